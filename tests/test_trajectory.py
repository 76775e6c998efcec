import json

import pytest
import torch

from tiedtransformer.analysis.dumps import EmbeddingDump, write_dump
from tiedtransformer.analysis.trajectory import TRAJECTORY, run_trajectory
from tiedtransformer.training.runs import RunDir

V, D = 404, 16


def dump(step: int, enc: torch.Tensor, dec: torch.Tensor, counts: list[int]) -> EmbeddingDump:
    tokens = [f"t{i}" for i in range(V)]
    # decoder-tied: dec_embed and dec_lut are one tensor
    mats = {"enc_embed": enc, "enc_lut": enc * 2.0, "dec_embed": dec, "dec_lut": dec}
    return EmbeddingDump(mats, tokens, tokens, {"step": step, "tying": "decoder"}, {"src": counts, "tgt": counts})


def test_a_run_trajectory_sets_learning_against_its_nulls(tmp_path):
    g = torch.Generator().manual_seed(0)
    enc0, dec0 = torch.randn(V, D, generator=g), torch.randn(V, D, generator=g)
    counts = [1000] * 4 + [500 - i for i in range(200)] + [5] * 200  # specials, frequent, rare
    dec = dec0.clone()
    dec[4:204] = dec[4:204] * 0.2 + 3.0 * torch.randn(1, D, generator=g)  # the frequent rows pulled into a cone
    run = RunDir(tmp_path / "run")
    write_dump(run.snapshot(0), dump(0, enc0, dec0, counts))
    write_dump(run.snapshot(50), dump(50, enc0, dec, counts))  # the encoder never moved

    report = run_trajectory(run.path, min_count=10)
    assert json.loads((run.path / TRAJECTORY).read_text()) == json.loads(json.dumps(report))
    first, last = report["snapshots"]
    assert [first["step"], last["step"]] == [0, 50]
    null = report["nulls"]["dec_lut"]
    assert last["matrices"]["dec_lut"]["mean_pair_cosine"] > 0.5 > abs(null["init"]["mean_pair_cosine"]) + 0.4
    assert abs(null["random"]["mean_pair_cosine"]) < 0.1
    assert last["matrices"]["dec_lut"]["top1_share"] > 0.5 > null["init"]["top1_share"]
    assert last["matrices"]["enc_embed"]["displacement"] == 0 and first["matrices"]["dec_lut"]["displacement"] == 0
    assert last["matrices"]["dec_lut"]["displacement"] > 1
    # only the kept (count >= 10) rows: the rare ones are left out, so every kept row is in the top band
    bands = {b["lo"]: b for b in last["matrices"]["dec_lut"]["displacement_by_band"]}
    assert bands[100]["rows"] == 200 and bands[0]["rows"] == 0
    pairs = last["pairs"]
    assert pairs["dec_embed|dec_lut"]["cka"] == pytest.approx(1.0) and pairs["dec_embed|dec_lut"]["procrustes"] < 1e-9
    assert pairs["enc_embed|enc_lut"]["cka"] == pytest.approx(1.0)  # a scaled copy
    assert pairs["enc_embed|dec_lut"]["cka"] < 0.2 and pairs["enc_embed|dec_lut"]["cka_chance"] < 0.2


def test_a_run_without_a_step_zero_snapshot_is_refused(tmp_path):
    run = RunDir(tmp_path / "run")
    write_dump(run.snapshot(50), dump(50, torch.randn(V, D), torch.randn(V, D), [100] * V))
    with pytest.raises(FileNotFoundError, match="step-0"):
        run_trajectory(run.path)
