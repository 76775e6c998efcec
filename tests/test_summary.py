import json
from pathlib import Path

from tiedtransformer.callbacks.run_summary import FINAL_KEYS

from tiedtransformer.run.files import RunDir
from tiedtransformer.run.summary import FitSummary

KEPT = Path(__file__).resolve().parent.parent / "docs" / "results" / "grid"


def test_a_summary_round_trips_and_keeps_what_it_does_not_know(tmp_path):
    s = FitSummary(status="finished", tying="three_way", direction="de-en", final_test_bleu=30.5)
    run = RunDir(tmp_path)
    run.write_summary(s)
    back = run.read_summary()
    assert back == s and back.finished and back.target_lang == "en" and back.seed is None
    data = {**s.to_json(), "from_a_newer_version": [1, 2]}
    (tmp_path / RunDir.SUMMARY).write_text(json.dumps(data))
    newer = run.read_summary()
    assert newer.extra == {"from_a_newer_version": [1, 2]} and newer.to_json() == data  # written back whole
    assert FitSummary.from_json(["not", "a", "mapping"]) == FitSummary()


def test_an_unreadable_summary_is_none_and_not_finished(tmp_path):
    (tmp_path / RunDir.SUMMARY).write_text("{ half")
    assert RunDir(tmp_path).read_summary() is None and not RunDir(tmp_path).finished()


def test_the_callback_fills_every_final_field():
    finals = {f"final_{k}" for k in FINAL_KEYS} | {"final_val_loss"}
    assert finals == {name for name in FitSummary.__dataclass_fields__ if name.startswith("final_")}


def test_every_key_a_fit_wrote_is_a_field():
    """The kept runs' summary.json files (written by the callback) hold no key the record does not know."""
    files = sorted(KEPT.glob("*/summary.json"))
    assert files, f"no kept runs in {KEPT}"
    for f in files:
        assert FitSummary.from_json(json.loads(f.read_text())).extra == {}, f
