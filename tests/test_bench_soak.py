import json
import os

from benchmarks import soak


def test_growth_is_measured_from_the_first_epoch_after_warm_up():
    assert soak.growth([900.0, 1000.0, 1000.0, 1020.0, 1050.0]) == 0.05
    assert soak.growth([5.0, 1.0, 100.0, 90.0]) == -0.1


def test_both_precisions_are_soaked_the_rules_first(monkeypatch):
    monkeypatch.setattr(soak, "default_precision", lambda accelerator: ("bf16-mixed", "native"))
    assert soak.precisions(None) == ["bf16-mixed", "32-true"]
    monkeypatch.setattr(soak, "default_precision", lambda accelerator: ("32-true", "no native bf16"))
    assert soak.precisions(None) == ["32-true", "bf16-mixed"]
    assert soak.precisions("bf16-mixed") == ["bf16-mixed"]


def test_a_sample_of_this_process_reads_its_memory_threads_and_files():
    s = soak.sample(os.getpid())
    assert s["main_rss_mb"] > 10 and s["pss_mb"] > 10 and s["threads"] >= 1 and s["fds"] >= 3
    assert s["processes"] >= 1
    assert 0 < s["anon_pss_mb"] <= s["pss_mb"]  # the heap's share of the resident memory


def test_show_prints_one_line_per_soak(tmp_path, capsys):
    line = {
        "precision": "bf16-mixed", "commit": "abc", "epochs": 4, "wall_s": 10.0, "rss_growth": 0.1,
        "main_rss_growth": 0.05, "flat": False, "peak_pss_mb_per_epoch": [90.0, 95.0, 100.0, 110.0],
        "peak_main_rss_mb_per_epoch": [50.0, 55.0, 60.0, 63.0],
    }  # fmt: skip
    f = tmp_path / "soak.jsonl"
    f.write_text(json.dumps(line) + "\n" + json.dumps({**line, "precision": "32-true"}) + "\n")
    soak.show(str(f))
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "bf16-mixed" in out[0] and "32-true" in out[1]
    assert "100.0 MB -> last   110.0 MB" in out[0] and "+0.1000" in out[0]


def test_the_process_kinds_add_up_to_the_tree():
    s = soak.sample(os.getpid())
    assert set(s["pss_mb_by_kind"]) == {"main", "wandb", "other"}
    assert abs(sum(s["pss_mb_by_kind"].values()) - s["pss_mb"]) < 1e-6
    assert s["pss_mb_by_kind"]["main"] > 10
    assert abs(sum(s["anon_pss_mb_by_kind"].values()) - s["anon_pss_mb"]) < 1e-6
