"""The benchmarks' shared harness (benchmarks/harness.py)."""

import json

import pytest

from benchmarks.harness import MIN_ROUNDS, compare, emit, interleaved, rates


def test_rounds_are_interleaved_and_rotated_after_an_untimed_warm_up():
    calls = []
    seconds = interleaved({n: (lambda n=n: calls.append(n)) for n in "abc"}, rounds=6, warmup=2)
    assert calls[:6] == list("abcabc")  # warm-up
    timed = calls[6:]
    assert [timed[i : i + 3] for i in range(0, 18, 3)] == [list(r) for r in ("abc", "bca", "cab") * 2]
    assert {k: len(v) for k, v in seconds.items()} == {"a": 6, "b": 6, "c": 6}


def test_fewer_than_five_rounds_are_refused():
    with pytest.raises(ValueError, match=str(MIN_ROUNDS)):
        interleaved({"a": lambda: None}, rounds=MIN_ROUNDS - 1)


def test_ratio_above_one_always_means_ours_is_better():
    ours_s, peer_s = [1.0, 1.1, 0.9, 1.0, 1.2], [2.0, 2.2, 1.8, 2.1, 2.3]
    assert compare(ours_s, peer_s)["ratio"] > 1  # times: ours faster
    assert compare(peer_s, ours_s)["ratio"] < 1
    ours_r, peer_r = rates(ours_s, 10), rates(peer_s, 10)  # rates: higher is better
    assert compare(ours_r, peer_r, higher_is_better=True)["ratio"] == compare(ours_s, peer_s)["ratio"]
    result = compare(ours_s, peer_s)
    assert result["ratio"] == 2.0 and result["ours"]["median"] == 1.0 and result["rounds"] == 5
    assert result["ratio_spread"]["min"] <= result["ratio"] <= result["ratio_spread"]["max"]


def test_the_json_line_names_machine_versions_and_date(capsys):
    emit("x", {"ratio": 1.5}, unit="s")
    line = json.loads(capsys.readouterr().out)
    assert line["benchmark"] == "x" and line["ratio"] == 1.5 and line["unit"] == "s"
    assert line["machine"]["cores"] >= 1 and "cpu" in line["machine"]
    assert "torch" in line["versions"] and line["date"]
