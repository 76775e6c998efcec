import json

import pytest
import torch

from tiedtransformer.analysis.dumps import EmbeddingDump, write_dump
from tiedtransformer.analysis.trajectory import cross_trajectory, run_trajectory
from tiedtransformer.run.files import RunDir

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
    assert json.loads(run.trajectory.read_text()) == json.loads(json.dumps(report))
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


def test_a_tied_matrix_is_compared_with_another_runs_matrices_at_every_common_step(tmp_path):
    g = torch.Generator().manual_seed(1)
    untied_lut = [torch.randn(V, D, generator=g) for _ in range(2)]
    untied_embed = [torch.randn(V, D, generator=g) for _ in range(2)]
    q, _ = torch.linalg.qr(torch.randn(D, D, generator=g))
    counts = [100] * V
    tied, untied = RunDir(tmp_path / "tied"), RunDir(tmp_path / "untied")
    for i, step in enumerate((0, 50)):
        mats = {"enc_embed": torch.randn(V, D, generator=g), "dec_embed": untied_embed[i], "dec_lut": untied_lut[i]}
        tokens = [f"t{j}" for j in range(V)]
        write_dump(
            untied.snapshot(step),
            EmbeddingDump(
                {**mats, "enc_lut": mats["enc_embed"]}, tokens, tokens, {"step": step}, {"src": counts, "tgt": counts}
            ),
        )
        # the tied run's matrix resembles the untied run's output embedding (a rotation of it) at step 50 only
        w = untied_lut[i] @ q if step == 50 else torch.randn(V, D, generator=g)
        order = list(reversed(tokens))  # another row order: compared by token text
        tied_mats = {"enc_embed": w.flip(0), "enc_lut": w.flip(0), "dec_embed": w.flip(0), "dec_lut": w.flip(0)}
        write_dump(
            tied.snapshot(step), EmbeddingDump(tied_mats, order, order, {"step": step}, {"src": counts, "tgt": counts})
        )
    write_dump(tied.snapshot(100), dump(100, torch.randn(V, D), torch.randn(V, D), counts))  # only in one run

    rows = cross_trajectory(tied.path, "dec_lut", untied.path, ("dec_lut", "dec_embed"), min_count=10)
    assert [r["step"] for r in rows] == [0, 50]
    assert (
        rows[1]["dec_lut"]["cka"] == pytest.approx(1.0) and rows[1]["dec_lut"]["tokens"] == V - 8
    )  # the first 4 rows of each run are specials
    assert rows[1]["dec_embed"]["cka"] < 0.2 and rows[0]["dec_lut"]["cka"] < 0.2
    assert rows[1]["dec_lut"]["cka_chance"] < 0.2
    # a rotated copy: Procrustes residual 0 and the same top pairs; an unrelated matrix: near chance
    same, other = rows[1]["dec_lut"], rows[1]["dec_embed"]
    assert same["procrustes"] == pytest.approx(0.0, abs=1e-6) and same["procrustes_chance"] > 0.5
    assert same["jaccard_top_pairs"] == 1.0 and same["jaccard_knn"] == 1.0 and same["spearman"] == pytest.approx(1.0)
    assert other["procrustes"] > 0.5 and other["jaccard_top_pairs"] < 0.2 and abs(other["spearman"]) < 0.2
    assert 0 < same["jaccard_top_pairs_chance"] < 0.05 and same["spearman_chance"] == 0.0


def test_learned_minus_null_across_seeds_and_its_figure(tmp_path):
    from tiedtransformer.analysis.figures import over_training
    from tiedtransformer.analysis.trajectory import learned_minus_null

    def trajectory(values: dict[int, float], init: float) -> dict:
        snapshots = [{"step": s, "matrices": {"dec_lut": {"effective_rank": v}}} for s, v in values.items()]
        return {"nulls": {"dec_lut": {"init": {"effective_rank": init}}}, "snapshots": snapshots}

    runs = [trajectory({0: 10.0, 50: 8.0, 100: 6.0}, 10.0), trajectory({0: 12.0, 50: 8.0}, 12.0)]
    steps, means, sds = learned_minus_null(runs, "dec_lut", "effective_rank")
    assert steps == [0, 50] and means == [0.0, -3.0] and sds == [0.0, pytest.approx(2**0.5)]
    one = learned_minus_null(runs[:1], "dec_lut", "effective_rank")
    assert one == ([0, 50, 100], [0.0, -2.0, -4.0], [0.0, 0.0, 0.0])
    assert learned_minus_null(runs[:1], "dec_lut", "effective_rank", null=None)[1] == [10.0, 8.0, 6.0]
    png = over_training(
        {"dec_lut": {("none", "en-de"): one, ("three_way", "de-en"): (steps, means, sds)}, "enc_embed": {}},
        tmp_path / "rank.png",
        "effective rank, learned minus init",
        "difference",
    )
    assert png.read_bytes()[:4] == b"\x89PNG"
