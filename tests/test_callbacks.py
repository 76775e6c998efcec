import csv
import json
import os
from pathlib import Path

import pytest

from tests.conftest import TINY_FIT
from tests.test_cli import run_main


def fit(tmp_path, capsys, *extra):
    args = [a for a in TINY_FIT if not a.startswith("--trainer.max_epochs")]
    code, out, err = run_main(
        [
            "fit",
            *args,
            "--trainer.max_epochs=2",
            "--run.root",
            str(tmp_path),
            "--run.name=r",
            "--similarity.analysis.top_k=50",
            *extra,
        ],
        capsys,
    )
    assert code == 0, err[-2000:]
    return tmp_path / "r"


@pytest.mark.slow
def test_snapshots_and_reports_during_a_fit_without_wandb(tmp_path, capsys):
    run = fit(tmp_path, capsys)
    dumps = sorted((run / "embeddings").iterdir())
    assert [d.name for d in dumps] == [d.name for d in dumps if d.name.startswith("step-")] and len(dumps) == 3
    assert dumps[0].name == "step-00000000"  # at initialisation: the null of the later ones
    for d in dumps:
        assert {"embeddings.safetensors", "vocab.txt", "similarity.json", "report.md", "similarity_vs_rank.png"} <= {
            p.name for p in d.iterdir()
        }
    report = json.loads((dumps[-1] / "similarity.json").read_text())
    assert report["meta"]["epoch"] == 1 and len(report["matrices"]["enc_lut"]["top_pairs"]) == 50
    nulls = report["matrices"]["enc_lut"]["nulls"]
    assert nulls["init"]["mean_top"] is not None and nulls["random"]["mean_top"] is not None
    first = json.loads((dumps[0] / "similarity.json").read_text())
    assert "skipped" in first["matrices"]["enc_lut"]["nulls"]["init"]  # step 0 is not its own null
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert any(r.get("emb/enc_embed/mean_top50") for r in rows)
    assert any(r.get("emb/enc_embed/settled_top50") for r in rows)  # second snapshot vs the first
    assert any(r.get("emb/enc_embed/mean_top50_init") for r in rows)
    # the geometry beside its nulls, at every snapshot (step 0 included: there it equals its init null)
    geo = [r for r in rows if r.get("emb/dec_lut/effective_rank")]
    assert len(geo) == 3 and all(r["emb/dec_lut/effective_rank_random"] for r in geo)
    assert float(geo[0]["emb/dec_lut/effective_rank"]) == pytest.approx(
        float(geo[0]["emb/dec_lut/effective_rank_init"])
    )
    assert float(geo[0]["emb/dec_lut/displacement"]) == 0 < float(geo[-1]["emb/dec_lut/displacement"])
    assert all(r["emb/cka/enc_embed~dec_embed"] and r["emb/cka/enc_embed~dec_embed_chance"] for r in geo)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished"
    import tiedtransformer

    assert summary["version"] == tiedtransformer.__version__  # the version that trained it (the model card says so)
    assert summary["machine"]["cores"] == os.cpu_count() and summary["machine"]["cpu"]  # where it trained
    import subprocess

    from tiedtransformer.run.machine import SOURCE, code_commit

    assert summary["commit"] == code_commit()  # the code that trained it (this checkout's commit)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=SOURCE, capture_output=True, text=True).stdout.strip()
    if (SOURCE / ".git").exists() and head:  # a checkout git reads (CI's clone too): the commit is there
        assert summary["commit"] in (head, head + "+")
    # the dump records the run's seed, which seeds the analysis's random nulls
    assert json.loads(next((run / "embeddings").glob("step-*/meta.json")).read_text())["seed"] is not None


@pytest.mark.slow
def test_every_n_steps_and_fp16_snapshots(tmp_path, capsys):
    options = ("--snapshot.every_n_epochs=0", "--snapshot.every_n_steps=2", "--snapshot.dtype=float16")
    run = fit(tmp_path, capsys, *options, "--trainer.max_steps=7")
    steps = sorted(int(d.name.split("-")[1]) for d in (run / "embeddings").iterdir())
    assert steps == [0, 2, 4, 6, 7]  # every 2 steps from the start, and the end of fit
    from tiedtransformer.analysis.dumps import read_dump

    assert read_dump(run / "embeddings" / f"step-{steps[0]:08d}").matrices["dec_lut"].dtype.itemsize == 2


@pytest.mark.slow
def test_wandb_offline_gets_the_tables_and_figures(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    args = [a for a in TINY_FIT if not a.startswith(("--run.wandb", "--trainer.max_epochs"))]
    code, _, err = run_main(
        [
            "fit",
            *args,
            "--trainer.max_epochs=1",
            "--run.root",
            str(tmp_path),
            "--run.name=w",
            "--similarity.analysis.top_k=20",
            "--snapshot.log_artifact=true",
        ],
        capsys,
    )
    assert code == 0, err[-2000:]
    media = [p.relative_to(tmp_path) for p in (tmp_path / "w" / "wandb").glob("offline-run-*/files/media/**/*")]
    names = " ".join(str(p) for p in media)
    assert "emb/top20_pairs" in names and "emb/jaccard" in names and "similarity_vs_rank" in names
    projector = [p for p in (tmp_path / "w" / "wandb").glob("offline-run-*/files/media/table/emb/projector*.json")]
    assert projector  # the frequent tokens' rows of every matrix, for W&B's 2D projection
    table = json.loads(projector[0].read_text())
    assert table["columns"][:4] == ["matrix", "token", "count", "d0"] and len(table["columns"]) == 3 + 32
    assert {row[0] for row in table["data"]} == {"enc_embed", "enc_lut", "dec_embed", "dec_lut"}
    tables = [p for p in (tmp_path / "w" / "wandb").glob("offline-run-*/files/media/table/emb/top20_pairs*.json")]
    assert tables and all(len(json.loads(p.read_text())["data"]) >= 20 for p in tables)  # written whole
    import gc

    import wandb

    gc.collect()  # W&B keeps its last 100 artifacts, each with its tables: the rows must not stay with them
    assert not [t for t in gc.get_objects() if isinstance(t, wandb.Table) and t.data]


@pytest.mark.slow
def test_analyze_command_on_a_dump_and_on_a_checkpoint(tmp_path, capsys):
    run = fit(tmp_path, capsys)
    dump = sorted((run / "embeddings").iterdir())[-1]
    code, out, _ = run_main(["analyze", str(dump), "--analysis.top_k", "30", "--out", str(tmp_path / "a")], capsys)
    assert code == 0 and "report:" in out
    data = json.loads((tmp_path / "a" / "similarity.json").read_text())
    assert len(data["matrices"]["dec_lut"]["top_pairs"]) == 30
    assert data["matrices"]["dec_lut"]["identical_to"] is None  # TINY_FIT trains with tying none
    ckpt = run / "checkpoints" / "last.ckpt"
    code, out, _ = run_main(["analyze", str(ckpt), "--analysis.top_k", "30"], capsys)
    assert code == 0
    from_ckpt = json.loads(Path(str(ckpt.with_suffix("")) + "-analysis/similarity.json").read_text())
    assert from_ckpt["matrices"]["enc_embed"]["top_pairs"] == data["matrices"]["enc_embed"]["top_pairs"]
    assert from_ckpt["matrices"]["enc_embed"]["nulls"]["init"] == data["matrices"]["enc_embed"]["nulls"]["init"]
    # a run directory: every snapshot, each against the run's step-0 snapshot
    code, out, _ = run_main(["analyze", str(run), "--analysis.top_k", "30"], capsys)
    assert code == 0 and out.count("null at init") == 2 and out.count("report:") == 3
    trajectory = json.loads((run / "trajectory.json").read_text())  # and its geometry over training
    assert [s["step"] for s in trajectory["snapshots"]] == [
        int(d.name[5:]) for d in sorted((run / "embeddings").iterdir())
    ]
    assert set(trajectory["nulls"]["dec_lut"]) == {"init", "random"} and "trajectory.json" in out
    # two inputs: their matrices compared by token text (a run against itself agrees completely)
    code, out, _ = run_main(
        ["analyze", str(dump), str(ckpt), "--analysis.top_k", "30", "--out", str(tmp_path / "x")], capsys
    )
    cross = json.loads((tmp_path / "x" / "cross.json").read_text())
    assert code == 0 and cross["jaccard_top_pairs"]["dec_lut"]["dec_lut"] == 1.0
    assert cross["spearman"]["enc_embed"]["enc_embed"] > 0.999 and (tmp_path / "x" / "cross.md").is_file()
    code, _, err = run_main(["analyze", str(dump), str(ckpt), str(ckpt)], capsys)
    assert code == 2 and "one input, or two" in err


def test_analyze_rejects_what_is_not_a_dump(tmp_path, capsys):
    code, _, err = run_main(["analyze", str(tmp_path)], capsys)
    assert code == 2 and "neither an embedding dump nor a run directory" in err


def test_an_epoch_end_loop_state_becomes_the_next_epochs_start_and_others_stay():
    from tiedtransformer.callbacks.stream_position import next_epoch_start

    def state(epoch: dict, batches: int, last: bool) -> dict:
        counts = dict.fromkeys(("ready", "started", "processed", "completed"), batches)
        return {
            "epoch_progress": {"total": dict(epoch), "current": dict(epoch)},
            "epoch_loop.batch_progress": {"total": dict(counts), "current": dict(counts), "is_last_batch": last},
        }

    ended = state({"ready": 1, "started": 1, "processed": 1, "completed": 0}, 5, True)
    assert next_epoch_start(ended)
    assert ended["epoch_progress"]["total"] == {"ready": 1, "started": 1, "processed": 1, "completed": 1}
    assert set(ended["epoch_loop.batch_progress"]["current"].values()) == {0}
    assert ended["epoch_loop.batch_progress"]["total"]["completed"] == 5  # totals count the whole run
    assert not ended["epoch_loop.batch_progress"]["is_last_batch"]
    for other in (
        state({"ready": 1, "started": 1, "processed": 0, "completed": 0}, 3, False),  # mid-epoch
        state({"ready": 2, "started": 2, "processed": 2, "completed": 2}, 10, True),  # already counted complete
        {},
    ):
        before = repr(other)
        assert not next_epoch_start(other) and repr(other) == before


def test_an_unreachable_validation_interval_is_named_and_reachable_ones_are_not():
    from tiedtransformer.callbacks.stream_position import unreachable_validation

    assert "val_check_interval=500" in unreachable_validation(500, 1, 120)
    assert unreachable_validation(500, None, 120) is None  # counted across epochs (model.val_every_n_steps)
    assert unreachable_validation(100, 1, 120) is None and unreachable_validation(1.0, 1, 120) is None
    assert unreachable_validation(float("inf"), 1, 120) is None  # Lightning's 1.0 on a stream: each epoch's end


@pytest.mark.slow
def test_last_checkpoint_holds_the_weights_training_ended_with_when_max_steps_ends_inside_an_epoch(tmp_path, capsys):
    import torch

    from tiedtransformer.run.checkpoint import load_checkpoint

    args = [a for a in TINY_FIT if not a.startswith("--trainer.max_epochs")]
    code, _, err = run_main(
        ["fit", *args, "--trainer.max_epochs=5", "--trainer.max_steps=30", "--run.root", str(tmp_path), "--run.name=r"],
        capsys,
    )
    assert code == 0, err[-2000:]
    run = tmp_path / "r"
    summary = json.loads((run / "summary.json").read_text())
    # an epoch of this demo is 16 steps: training stops inside the second, after the first one's validation
    assert summary["global_step"] == 30 and summary["epochs"] == 2
    others = [p for p in (run / "checkpoints").glob("epoch*.ckpt")]
    assert others and all(torch.load(p, weights_only=True)["global_step"] < 30 for p in others)
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 30  # not the validation's step
