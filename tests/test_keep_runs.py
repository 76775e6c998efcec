"""docs/keep_runs.py: what the results page needs of a finished run, copied into the repository."""

import importlib.util
import json
from pathlib import Path

import torch

from tests.test_trajectory import dump
from tiedtransformer.analysis.dumps import write_dump
from tiedtransformer.run.files import RunDir

REPO = Path(__file__).resolve().parents[1]


def keep_runs():
    spec = importlib.util.spec_from_file_location("keep_runs", REPO / "docs" / "keep_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_finished_runs_small_files_and_its_trajectory_are_kept_and_its_dumps_are_not(tmp_path):
    run = RunDir(tmp_path / "runs" / "grid-1")
    for step in (0, 50):
        write_dump(run.snapshot(step), dump(step, torch.randn(404, 16), torch.randn(404, 16), [100] * 404))
    run.summary.write_text(json.dumps({"status": "finished", "direction": "en-de"}))
    for f in (run.config, run.path / "metrics.csv", run.final_translations("de", "val")):
        f.write_text("x\n")
    (run.path / "checkpoints").mkdir()
    (run.path / "checkpoints" / "last.ckpt").write_bytes(b"0")
    copied = keep_runs().keep(run, tmp_path / "kept")
    names = sorted(p.name for p in copied)
    assert names == [
        "config.yaml",
        "final-val.de",
        "metrics.csv",
        "similarity-final.json",
        "summary.json",
        "trajectory.json",
    ]
    kept = tmp_path / "kept" / "grid-1"
    assert [s["step"] for s in json.loads((kept / "trajectory.json").read_text())["snapshots"]] == [0, 50]
    assert not (kept / "embeddings").exists() and not (kept / "checkpoints").exists()
    # the last snapshot's report, analysed with this code (the kinds of its top pairs beside their nulls), trimmed
    final = json.loads((kept / "similarity-final.json").read_text())
    m = final["matrices"]["dec_lut"]
    assert {"kinds", "nulls"} <= set(m) and {"init", "random"} <= set(m["nulls"]) and "kinds" in m["nulls"]["init"]
    assert len(m["top_pairs"]) == 100 and "histogram" not in m and final["meta"]["step"] == 50
    assert RunDir(kept).finished()  # a sweep pointed at a copy of it skips the run
