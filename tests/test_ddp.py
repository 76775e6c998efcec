"""Two DDP processes on the CPU (gloo), through the real CLI: uneven data must not hang a rank,
every pair is trained on exactly once per epoch across ranks, and tying survives the DDP wrapper."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import TINY_FIT
from tests.data_helpers import demo_texts, write_parallel

REPO = Path(__file__).resolve().parents[1]


def test_two_process_ddp_fit_sees_every_pair_once_and_keeps_ties(tmp_path):
    # Pairs alternate long and short, and rank r reads pairs i with i % 2 == r: rank 0 gets far more
    # tokens, hence more batches, and rank 1 must wait with stand-in batches.
    n_pairs, short = 301, demo_texts(400)
    pairs = [
        {k: " ".join(p[k] for p in short[i : i + 3]) for k in ("en", "de")} if i % 2 == 0 else short[i]
        for i in range(n_pairs)
    ]
    train = write_parallel(tmp_path / "corpus" / "train", pairs)
    valid = write_parallel(tmp_path / "corpus" / "valid", demo_texts(21, "validation"))
    args = [a for a in TINY_FIT if not a.startswith(("--data.demo", "--trainer.max_epochs", "--data.source", "--data.max_"))]
    cmd = [sys.executable, "-m", "tiedtransformer", "fit", *args, "--data.source=files",
           f"--data.train_path={train}", f"--data.valid_path={valid}",
           "--data.max_tokens=600", "--data.max_len=256", "--trainer.max_epochs=2", "--model.tying=three_way",
           "--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu",
           "--run.root", str(tmp_path / "runs"), "--run.name=ddp",
           "--trainer.callbacks+=tests.probes.RecordPairs", f"--trainer.callbacks.out_dir={tmp_path}"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for epoch in (0, 1):
        seen = [[i for e, i in r["ids"] if e == epoch] for r in ranks]
        assert not set(seen[0]) & set(seen[1])
        assert sorted(seen[0] + seen[1]) == list(range(n_pairs))
    for r in ranks:
        assert r["wrapped"] == "DistributedDataParallel"
        assert r["tied"]["enc_embed"] == ["dec_embed", "dec_lut"]
    assert ranks[0]["stand_ins"] == 0 and ranks[1]["stand_ins"] > 0
    summary = json.loads((tmp_path / "runs" / "ddp" / "summary.json").read_text())
    assert summary["final_val_loss"] is not None and summary["best_val_bleu"] is not None
