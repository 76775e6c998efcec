"""benchmarks/similarity.py: the instrumented run of the whole command, and its phases."""

import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.similarity import PHASES_PROCESS, phases
from tiedtransformer.analysis.dumps import EmbeddingDump, write_dump

REPO = Path(__file__).resolve().parents[1]


def test_the_instrumented_command_times_its_phases_and_still_writes_its_report(tmp_path, monkeypatch):
    tokens = [f"t{i}" for i in range(300)]
    dump = write_dump(tmp_path / "dump", EmbeddingDump({"dec_lut": torch.randn(300, 16)}, tokens, tokens, meta={}))
    marks = tmp_path / "marks.json"
    monkeypatch.setenv("TIEDTRANSFORMER_CACHE", str(tmp_path / "cache"))
    t = time.perf_counter()
    cmd = [sys.executable, "-c", PHASES_PROCESS, str(marks), "analyze", str(dump), f"--out={tmp_path / 'out'}"]
    subprocess.run(cmd, check=True, cwd=REPO, capture_output=True, timeout=300)
    wall = time.perf_counter() - t
    assert (tmp_path / "out" / "report.md").is_file() and (tmp_path / "out" / "histogram.png").is_file()
    m = json.loads(marks.read_text())
    assert 0 < m["imported"] < m["analysis_start"] < m["analysis_end"] < m["returned"] < wall
    assert 0 < m["products"] < m["analysis_end"] - m["analysis_start"]  # the analysis's matrix products were timed
    by_phase = phases(m, wall)
    assert all(v >= 0 for v in by_phase.values())


def test_each_phase_is_the_time_between_its_own_two_marks():
    marks = {"imported": 1.0, "analysis_start": 3.0, "products": 2.5, "analysis_end": 7.0, "returned": 8.0}
    assert list(phases(marks, 10.0).values()) == [1.0, 2.0, 2.5, 1.5, 1.0, 2.0]
