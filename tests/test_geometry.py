import math

import pytest
import torch

from tiedtransformer.analysis.geometry import (
    by_band,
    displacement,
    effective_rank,
    linear_cka,
    matrix_statistics,
    mean_pair_cosine,
    norm_frequency_spearman,
    pair_statistics,
    procrustes_residual,
    singular_values,
    top_share,
)
from tiedtransformer.analysis.similarity import random_like


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_mean_pair_cosine_equals_the_mean_over_all_pairs():
    w = randn(50, 8) + 0.5
    u = w / w.norm(dim=1, keepdim=True)
    cos = u @ u.T
    brute = (cos.sum() - cos.diagonal().sum()) / (50 * 49)
    assert mean_pair_cosine(w) == pytest.approx(float(brute), abs=1e-12)
    assert mean_pair_cosine(torch.ones(5, 3)) == pytest.approx(1.0)


def test_a_random_matrix_has_the_statistics_of_its_null_within_sampling_error():
    w = randn(4000, 64, seed=1) * torch.rand(4000, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    learned, null = matrix_statistics(w), matrix_statistics(random_like(w, seed=3).double())
    # the mean of n(n-1) pair cosines of isotropic rows: 0 with a standard error of about 1/(n sqrt(d))
    assert abs(learned["mean_pair_cosine"]) < 5 / (4000 * 8) and abs(null["mean_pair_cosine"]) < 5 / (4000 * 8)
    assert learned["top1_share"] == pytest.approx(null["top1_share"], abs=0.01)
    assert learned["effective_rank"] == pytest.approx(null["effective_rank"], rel=0.02)


def test_planted_structure_is_found():
    w = randn(1000, 32)
    pulled = w.clone()
    pulled[:300] = pulled[:300] * 0.3 + 2.0 * randn(1, 32, seed=9)  # a group of rows pulled together
    assert mean_pair_cosine(pulled) > 0.05 > abs(mean_pair_cosine(w))
    low_rank = randn(1000, 3, seed=4) @ randn(3, 32, seed=5)
    s = singular_values(low_rank)
    assert effective_rank(s) < 3.01 and top_share(s, 3) == pytest.approx(1.0)
    assert effective_rank(torch.ones(4)) == pytest.approx(4.0) and effective_rank(torch.tensor([2.0, 0, 0])) == 1.0


def test_displacement_by_band_and_norm_against_frequency():
    w0 = randn(6, 4)
    w = w0.clone()
    w[:3] *= 1.5  # frequent rows moved by half their norm, rare rows not at all
    counts = torch.tensor([500, 400, 300, 5, 4, 3])
    d = displacement(w, w0)
    assert torch.allclose(d, torch.tensor([0.5, 0.5, 0.5, 0, 0, 0], dtype=torch.float64))
    bands = by_band(d, counts, [(0, 10), (10, float("inf"))])
    assert [b["rows"] for b in bands] == [3, 3] and bands[0]["mean"] == 0 and bands[1]["mean"] == pytest.approx(0.5)
    ordered = torch.arange(1, 7, dtype=torch.float64).unsqueeze(1) * torch.ones(6, 4, dtype=torch.float64)
    assert norm_frequency_spearman(ordered, [1, 2, 3, 4, 5, 6]) == pytest.approx(1.0)
    assert norm_frequency_spearman(ordered, [6, 5, 4, 3, 2, 1]) == pytest.approx(-1.0)


def reference_cka(x, y):
    """Kornblith et al.'s HSIC form with an explicit centring matrix, for small matrices."""
    n = len(x)
    h = torch.eye(n, dtype=torch.float64) - 1.0 / n
    k, m = h @ (x @ x.T) @ h, h @ (y @ y.T) @ h
    return float((k * m).sum() / (k.norm() * m.norm()))


def reference_procrustes(x, y):
    """The residual by the explicit orthogonal map R = U Vᵀ of the SVD of Xᵀ Y (normalised, centred)."""
    x, y = x - x.mean(0), y - y.mean(0)
    x, y = x / x.norm(), y / y.norm()
    u, _, vt = torch.linalg.svd(x.T @ y)
    return float((x @ (u @ vt) - y).square().sum())


def test_cka_and_procrustes_against_plain_references_on_small_matrices():
    x, y = randn(30, 5, seed=1), randn(30, 5, seed=2) + 0.3 * randn(30, 5, seed=1)
    assert linear_cka(x, y) == pytest.approx(reference_cka(x, y), abs=1e-10)
    assert procrustes_residual(x, y) == pytest.approx(reference_procrustes(x, y), abs=1e-10)


def test_a_rotated_copy_gives_cka_one_and_no_residual_an_unrelated_matrix_gives_chance():
    x = randn(2000, 16, seed=1)
    q, _ = torch.linalg.qr(randn(16, 16, seed=2))
    rotated = 3.0 * x @ q + 5.0  # rotated, scaled and shifted
    stats = pair_statistics(x, rotated)
    assert stats["cka"] == pytest.approx(1.0, abs=1e-9) and stats["procrustes"] == pytest.approx(0.0, abs=1e-9)
    unrelated = pair_statistics(x, randn(2000, 16, seed=7))
    for key in ("cka", "procrustes"):
        assert unrelated[key] == pytest.approx(unrelated[f"{key}_chance"], abs=0.02)
    assert stats["cka_chance"] < 0.05 and stats["procrustes_chance"] > 1.5
    assert math.isnan(linear_cka(torch.ones(4, 2), x[:4]))
