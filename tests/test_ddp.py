"""Two DDP processes on the CPU (gloo), through the real CLI: uneven data must not hang a rank,
every pair is trained on exactly once per epoch across ranks, and tying survives the DDP wrapper."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_FIT
from tests.data_helpers import demo_texts, write_parallel

REPO = Path(__file__).resolve().parents[1]
N_PAIRS = 301


def two_process_fit(tmp_path, run: str, *options: str, probe: str = "RecordPairs", workers: int = 0) -> Path:
    """A 2-process CPU fit (2 epochs, three-way tied) on a corpus whose ranks get uneven work: pairs
    alternate long and short, and rank r reads pairs i with i % 2 == r, so rank 0 gets far more
    tokens, hence more batches, and rank 1 must wait with stand-in batches. Each rank writes
    ``<tmp_path>/<run>/rank<r>.json`` (``tests.probes.<probe>``); ``workers`` DataLoader workers per
    rank. Returns the run directory."""
    short = demo_texts(400)
    pairs = [
        {k: " ".join(p[k] for p in short[i : i + 3]) for k in ("en", "de")} if i % 2 == 0 else short[i]
        for i in range(N_PAIRS)
    ]
    train = write_parallel(tmp_path / "corpus" / "train", pairs)
    valid = write_parallel(tmp_path / "corpus" / "valid", demo_texts(21, "validation"))
    probes = tmp_path / run
    probes.mkdir()
    args = [
        a
        for a in TINY_FIT
        if not a.startswith(
            ("--data.demo", "--trainer.max_epochs", "--data.source", "--data.max_", "--data.num_workers")
        )
    ]
    cmd = [
        sys.executable,
        "-m",
        "tiedtransformer",
        "fit",
        *options,
        *args,
        "--data.source=files",
        f"--data.train_path={train}",
        f"--data.valid_path={valid}",
        "--data.max_tokens=600",
        "--data.max_len=256",
        f"--data.num_workers={workers}",
        "--trainer.max_epochs=2",
        "--model.net.tying=three_way",
        "--trainer.devices=2",
        "--trainer.accelerator=cpu",
        "--run.root",
        str(tmp_path / "runs"),
        f"--run.name={run}",
        f"--trainer.callbacks+=tests.probes.{probe}",
        f"--trainer.callbacks.out_dir={probes}",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp_path / "runs" / run


def resume_two_process_fit(tmp_path, run_dir: Path, max_epochs: int) -> None:
    """Continue a finished two_process_fit run from its last checkpoint up to ``max_epochs``."""
    cmd = [
        sys.executable,
        "-m",
        "tiedtransformer",
        "fit",
        "-c",
        str(run_dir / "config.yaml"),
        "--ckpt_path=last",
        f"--trainer.max_epochs={max_epochs}",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("(resuming)") == 2  # both ranks know that they resume


def rank_records(tmp_path, run: str) -> list[dict]:
    return [json.loads((tmp_path / run / f"rank{r}.json").read_text()) for r in (0, 1)]


def assert_every_pair_once_per_epoch(ranks: list[dict], epochs=(0, 1)) -> None:
    assert {e for r in ranks for e, _ in r["ids"]} == set(epochs)
    for epoch in epochs:
        seen = [[i for e, i in r["ids"] if e == epoch] for r in ranks]
        assert not set(seen[0]) & set(seen[1])
        assert sorted(seen[0] + seen[1]) == list(range(N_PAIRS))
    assert ranks[0]["stand_ins"] == 0 and ranks[1]["stand_ins"] > 0


@pytest.mark.slow
def test_two_process_ddp_fit_sees_every_pair_once_and_keeps_ties(tmp_path):
    run_dir = two_process_fit(tmp_path, "ddp", "--trainer.strategy=ddp")
    ranks = rank_records(tmp_path, "ddp")
    assert_every_pair_once_per_epoch(ranks)
    for r in ranks:
        assert r["wrapped"] == "DistributedDataParallel"
        assert r["tied"]["enc_embed"] == ["dec_embed", "dec_lut"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["final_val_loss"] is not None and summary["best_val_bleu"] is not None

    # One more epoch from the last checkpoint: no rank waits for another, the epoch is trained whole.
    resume_two_process_fit(tmp_path, run_dir, 3)
    assert_every_pair_once_per_epoch(rank_records(tmp_path, "ddp"), epochs=(2,))
    assert json.loads((run_dir / "summary.json").read_text())["global_step"] > summary["global_step"]


@pytest.mark.slow
def test_two_ranks_with_two_dataloader_workers_each_still_see_every_pair_once(tmp_path):
    # Each rank's stream is split again between its workers: 4 readers, no pair twice, none lost.
    two_process_fit(tmp_path, "workers", "--trainer.strategy=ddp", workers=2)
    assert_every_pair_once_per_epoch(rank_records(tmp_path, "workers"))


@pytest.mark.slow
def test_two_nodes_write_one_run_directory(tmp_path):
    # Two "nodes" of one process each on this machine, as a cluster launches them (NODE_RANK): only
    # rank 0 creates the run directory, and every file of the run lands there.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [a for a in TINY_FIT if not a.startswith("--trainer.max_epochs")]
    cmd = [
        sys.executable,
        "-m",
        "tiedtransformer",
        "fit",
        *args,
        "--trainer.max_epochs=1",
        "--trainer.strategy=ddp",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.num_nodes=2",
        "--run.root",
        str(tmp_path / "runs"),
        "--run.name=two-nodes",
    ]
    procs = [
        subprocess.Popen(
            cmd,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                **os.environ,
                "PYTHONPATH": str(REPO),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
                "NODE_RANK": str(node),
            },
        )
        for node in (0, 1)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    assert [d.name for d in (tmp_path / "runs").iterdir()] == ["two-nodes"]
    run = tmp_path / "runs" / "two-nodes"
    assert (run / "summary.json").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert "another node" in outs[1][0]
