"""FSDP2 (configs/fsdp.yaml: ModelParallelStrategy + fully_shard) with two CPU processes (gloo),
through the real CLI, on the uneven corpus of the DDP test: the tied matrix is one sharded Parameter
in one FSDP group, ranks with uneven work do not hang, and training ends with the same weights as
the same run under DDP."""

import json
import os
import re
import subprocess
import sys

import pytest
import torch

from tests.test_ddp import REPO, assert_every_pair_once_per_epoch, rank_records, resume_two_process_fit, two_process_fit


@pytest.mark.slow
def test_two_process_fsdp_fit_shards_the_tied_matrix_as_one_group_and_matches_ddp(tmp_path):
    fsdp_dir = two_process_fit(tmp_path, "fsdp", "-c", str(REPO / "configs" / "fsdp.yaml"), probe="RecordSharding")
    ranks = rank_records(tmp_path, "fsdp")
    assert_every_pair_once_per_epoch(ranks)
    for r in (0, 1):
        assert ranks[r]["wrapped"] == "FSDPTiedTransformer"
        assert ranks[r]["tied"]["enc_embed"] == ["dec_embed", "dec_lut"]
        sharding = json.loads((tmp_path / "fsdp" / f"sharding{r}.json").read_text())
        for name in ("enc_embed", "dec_embed", "dec_lut"):
            m = sharding[name]
            assert m["type"] == "DTensor" and m["local_rows"] == m["rows"] // 2  # vocab 200: 100 rows each
            assert m["in_root_group"] == 1  # one parameter of the root group, whatever its roles

    ddp_dir = two_process_fit(tmp_path, "ddp", "--trainer.strategy=ddp")
    fsdp_ckpt, ddp_ckpt = (
        torch.load(d / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False) for d in (fsdp_dir, ddp_dir)
    )
    assert fsdp_ckpt["global_step"] == ddp_ckpt["global_step"] > 0
    fsdp_w, ddp_w = fsdp_ckpt["state_dict"], ddp_ckpt["state_dict"]
    assert fsdp_w.keys() == ddp_w.keys()  # one full checkpoint file, as under DDP
    for key in fsdp_w:
        torch.testing.assert_close(fsdp_w[key], ddp_w[key], rtol=1e-3, atol=1e-4)
    assert torch.equal(fsdp_w["net.enc_embed.weight"], fsdp_w["net.dec_lut.weight"])
    fsdp_sum, ddp_sum = (json.loads((d / "summary.json").read_text()) for d in (fsdp_dir, ddp_dir))
    assert abs(fsdp_sum["final_val_loss"] - ddp_sum["final_val_loss"]) < 1e-3
    assert fsdp_sum["best_val_bleu"] == ddp_sum["best_val_bleu"]
    # the embedding snapshot of the last step was gathered from the shards and written by rank zero
    assert (fsdp_dir / "embeddings" / f"step-{fsdp_ckpt['global_step']:08d}").is_dir()

    # `validate` under FSDP: the checkpoint loads into the sharded model, evaluation runs on the
    # gathered copy, and the validation loss is the one the fit logged with the same weights
    cmd = [
        sys.executable,
        "-m",
        "tiedtransformer",
        "validate",
        "-c",
        str(fsdp_dir / "config.yaml"),
        f"--ckpt_path={fsdp_dir / 'checkpoints' / 'last.ckpt'}",
    ]
    proc = subprocess.run(
        cmd,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Lightning prints a table of the metrics; the first number after the name is its value
    value = re.search(r"val/loss\D*?(\d+\.\d+)", proc.stdout, re.DOTALL)
    assert value, proc.stdout[-3000:]
    assert float(value.group(1)) == pytest.approx(fsdp_sum["final_val_loss"], abs=1e-5)

    # the full checkpoint file loads back into the sharded model: one more epoch, the same as DDP's
    for run, run_dir in (("fsdp", fsdp_dir), ("ddp", ddp_dir)):
        resume_two_process_fit(tmp_path, run_dir, 3)
        assert_every_pair_once_per_epoch(rank_records(tmp_path, run), epochs=(2,))
    fsdp_w, ddp_w = (
        torch.load(d / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
        for d in (fsdp_dir, ddp_dir)
    )
    for key in fsdp_w:  # sums in another order drift apart a little more with every step
        torch.testing.assert_close(fsdp_w[key], ddp_w[key], rtol=1e-2, atol=1e-3)
