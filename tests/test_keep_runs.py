"""docs/keep_runs.py: what the results page needs of a finished run, copied into the repository."""

import json

import torch

from tests.conftest import docs_script
from tests.test_trajectory import dump
from tiedtransformer.analysis.dumps import read_dump, write_dump
from tiedtransformer.run.files import RunDir


def keep_runs():
    return docs_script("keep_runs")


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
        "similarity-step0.json",
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


def _kept_run(tmp_path, seed=1):
    """A finished run (decoder-tied, en-de, ``seed``) kept with docs/keep_runs.py, and its step-0 matrices."""
    g = torch.Generator().manual_seed(seed)
    enc0, dec0, counts = torch.randn(404, 16, generator=g), torch.randn(404, 16, generator=g), [100] * 404
    run = RunDir(tmp_path / "runs" / f"grid-{seed}")
    for step in (0, 50):
        d = dump(step, enc0 + step, dec0 + step, counts)
        d.meta |= {"direction": "en-de", "seed": seed}
        write_dump(run.snapshot(step), d)
    run.summary.write_text(json.dumps({"status": "finished", "direction": "en-de", "tying": "decoder", "seed": seed}))
    keep_runs().keep(run, tmp_path / "kept")
    RunDir(tmp_path / "kept" / run.name).init_similarity.unlink()  # kept before step-0 reports were kept
    return enc0, dec0, counts


def test_a_rerun_step_0_is_kept_only_when_it_is_the_kept_runs_own(tmp_path):
    enc0, dec0, counts = _kept_run(tmp_path)
    kept = RunDir(tmp_path / "kept" / "grid-1")

    def rerun(name, enc, seed=1, direction="en-de"):
        d = dump(0, enc, dec0, counts)
        d.meta |= {"direction": direction, "seed": seed}
        write_dump(tmp_path / "reruns" / name, d)
        return tmp_path / "reruns" / name

    other = rerun("other-init", enc0 * 1.01)  # the same grid point, but not the same initialisation
    assert "enc_embed" in keep_runs().step0_mismatch(other, read_dump(other), kept)
    seed2 = rerun("other-seed", enc0, seed=2)
    assert "(tying, direction, seed" in keep_runs().step0_mismatch(seed2, read_dump(seed2), kept)
    assert keep_runs().keep_step0([other], tmp_path / "kept") == [] and not kept.init_similarity.exists()

    same = rerun("same", enc0.clone())
    assert keep_runs().step0_mismatch(same, read_dump(same), kept) is None
    assert keep_runs().keep_step0([other, same], tmp_path / "kept") == [kept.init_similarity]
    report = json.loads(kept.init_similarity.read_text())
    assert report["meta"]["step"] == 0 and len(report["matrices"]["dec_lut"]["top_pairs"]) == 100

    # the page's loader reads it as the run's step-0 report
    from tiedtransformer.analysis.compare import load_run

    assert load_run(kept.path)["similarity_init"].meta["step"] == 0
