import itertools

import pytest
import torch

from tiedtransformer.analysis.similarity import (
    _tiles,
    _true_positions,
    analyze_matrix,
    chance_jaccard,
    chance_jaccard_between,
    jaccard,
    mean_knn_jaccard,
    normalize_rows,
    pair_set,
    random_like,
    rank_correlation,
    sample_pairs,
)


def brute_force(w, K, k):
    x = normalize_rows(w)
    sim = x @ x.T
    V = w.size(0)
    pairs = [(float(sim[i, j]), i, j) for i, j in itertools.combinations(range(V), 2)]
    top = sorted(pairs, key=lambda p: (-p[0], p[1], p[2]))[:K]
    bottom = sorted(pairs, key=lambda p: (p[0], p[1], p[2]))[:K]
    knn = []
    for i in range(V):
        row = sorted(((float(sim[i, j]), j) for j in range(V) if j != i), key=lambda p: (-p[0], p[1]))[: k + 1]
        knn.append(row)
    return top, bottom, knn, [p[0] for p in pairs]


def brute_force_all(w):
    x = normalize_rows(w)
    sim = x @ x.T
    return [(float(sim[i, j]), i, j) for i, j in itertools.combinations(range(w.size(0)), 2)]


def matrix(V=53, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(V, d, generator=g)
    w[7] = w[3] * 2.5  # planted: same direction, cosine 1
    w[20] = -w[11]  # planted: opposite, cosine -1
    w[30] = torch.zeros(d)  # zero row
    w[40] = w[41] = w[42]  # duplicate rows: three pairs tied at cosine 1
    return w


# 11, 30: blocks not a multiple of their diagonal tiles; K 300 with k 1: most top pairs beat neither their
# row's nor their column's k-th, so the scan that finds them (a row bar lowered to the K-th) is what is tested
@pytest.mark.parametrize("K,k", [(25, 5), (300, 1)])
@pytest.mark.parametrize("block", [4, 7, 11, 16, 30, 64])
def test_equals_brute_force_with_planted_pairs_ties_duplicates_and_a_zero_row(block, K, k):
    w = matrix()
    result = analyze_matrix(w, top_k=K, knn_k=k, bins=20, block=block)
    top, bottom, knn, all_pairs = brute_force(w, K, k)
    torch.testing.assert_close(result.top_scores, torch.tensor([p[0] for p in top]))
    torch.testing.assert_close(result.bottom_scores, torch.tensor([p[0] for p in bottom]))
    # pairs strictly better than the K-th are determined; those tied with the K-th may be any of them
    for got, ref, sign in ((result.top_pairs, top, 1), (result.bottom_pairs, bottom, -1)):
        kth = ref[-1][0]
        strict = {(i, j) for s, i, j in ref if sign * (s - kth) > 1e-6}
        tied = {(i, j) for s, i, j in brute_force_all(w) if abs(s - kth) <= 1e-6}
        assert strict <= pair_set(got) <= strict | tied
    assert {(3, 7), (40, 41), (40, 42), (41, 42)} <= pair_set(result.top_pairs[:4])
    assert pair_set(result.bottom_pairs[:1]) == {(11, 20)}
    assert all(i < j for i, j in result.top_pairs.tolist())
    determined = 0
    for i in range(w.size(0)):
        torch.testing.assert_close(result.knn_scores[i], torch.tensor([s for s, _ in knn[i][:k]]))
        if knn[i][k - 1][0] > knn[i][k][0] + 1e-6:  # the set is determined unless the k-th place ties
            assert set(result.knn[i].tolist()) == {j for _, j in knn[i][:k]}
            determined += 1
        assert i not in result.knn[i].tolist()
    assert determined > 40
    assert not torch.isnan(result.top_scores).any() and not torch.isnan(result.knn_scores).any()
    assert result.knn_scores[30].eq(0).all()
    reference = torch.histc(torch.tensor(all_pairs).clamp(-1, 1), bins=20, min=-1, max=1)
    assert result.histogram.tolist() == reference.double().tolist()
    assert result.histogram.sum() == result.n_pairs == 53 * 52 // 2


@pytest.mark.parametrize("bins", [200, 300])
@pytest.mark.parametrize("equal_rows", [0, 280])  # 280 of 300 rows equal: the screen on bins lets a crowd through
def test_scores_equal_brute_force_where_the_column_screen_on_bins_lets_many_through(bins, equal_rows):
    """The columns' k-th is tested on histogram bins first (a superset of the entries beating it); with
    cosines piled up in one bin the scan falls back to the exact test. Either way: brute force's scores."""
    w = torch.randn(300, 12, generator=torch.Generator().manual_seed(2))
    w[:equal_rows] = w[0]
    K, k = 30, 4
    result = analyze_matrix(w, top_k=K, knn_k=k, bins=bins, block=256)
    top, bottom, knn, all_pairs = brute_force(w, K, k)
    torch.testing.assert_close(result.top_scores, torch.tensor([p[0] for p in top]))
    torch.testing.assert_close(result.bottom_scores, torch.tensor([p[0] for p in bottom]))
    torch.testing.assert_close(result.knn_scores, torch.tensor([[s for s, _ in row[:k]] for row in knn]))
    assert result.histogram.sum() == result.n_pairs


@pytest.mark.parametrize("bins", [7, 200, 253, 254, 300])  # 254, 300: bin numbers past uint8
def test_histogram_counts_every_pair_once_in_histc_bins(bins):
    w = torch.randn(301, 6, generator=torch.Generator().manual_seed(1))
    w[5] = w[4] * 3  # cosine 1 (may round past it: counted in the last bin)
    w[9] = -w[8]  # cosine -1
    result = analyze_matrix(w, top_k=10, knn_k=3, bins=bins, block=64)
    x = normalize_rows(w)
    pairs = (x @ x.T)[torch.ones(301, 301, dtype=torch.bool).triu(1)]
    reference = torch.histc(pairs.clamp(-1, 1), bins=bins, min=-1, max=1).double()
    assert result.histogram.sum() == result.n_pairs == 301 * 300 // 2
    # blocks multiply other row groups than the reference's one product: a value within rounding of an
    # edge may fall on the other side
    assert (result.histogram - reference).abs().sum() <= 4


@pytest.mark.parametrize("density", [0.0, 0.001, 0.3, 1.0])
def test_true_positions_are_those_of_nonzero(density):
    g = torch.Generator().manual_seed(3)
    for n in (8, 64, 8 * 1001):
        mask = torch.rand(n, generator=g) < density
        assert _true_positions(mask).tolist() == mask.nonzero().squeeze(1).tolist()


@pytest.mark.parametrize("V, block, small", [(23, 8, 2), (37, 10, 3), (5, 5, 1), (40, 8, 8)])
def test_tiles_hold_every_pair_once(V, block, small):
    diagonal, upper = _tiles(V, block, small)
    seen = torch.zeros(V, V, dtype=torch.long)
    for r0, r1, c0, c1 in diagonal:
        assert (r0, r1) == (c0, c1) and r1 - r0 <= small
        seen[r0:r1, c0:c1] += torch.ones(r1 - r0, r1 - r0, dtype=torch.long).triu(1)
    for r0, r1, c0, c1 in upper:
        assert r1 <= c0  # wholly above the diagonal: its rows and its columns are different lists
        seen[r0:r1, c0:c1] += 1
    assert torch.equal(seen, torch.ones(V, V, dtype=torch.long).triu(1))


def test_scores_scaled_back_are_as_close_to_fp64_as_a_plain_fp32_product():
    w = torch.randn(3000, 512, generator=torch.Generator().manual_seed(5))
    r = analyze_matrix(w, top_k=200, knn_k=5, block=1024)
    x64 = w.double() / w.double().norm(dim=1, keepdim=True)  # normalize_rows works in fp32
    plain = normalize_rows(w) @ normalize_rows(w).T

    def error(pairs, scores):
        exact = (x64[pairs[:, 0]] * x64[pairs[:, 1]]).sum(1)
        return float((scores.double() - exact).abs().max())

    rows = torch.arange(3000).repeat_interleave(5)
    knn_pairs = torch.stack([rows, r.knn.reshape(-1)], 1)
    plain_error = error(knn_pairs, plain[rows, r.knn.reshape(-1)])
    for pairs, scores in (
        (r.top_pairs, r.top_scores),
        (r.bottom_pairs, r.bottom_scores),
        (knn_pairs, r.knn_scores.reshape(-1)),
    ):
        assert error(pairs, scores) <= max(1e-6, 2 * plain_error)


def test_k_larger_than_the_number_of_pairs():
    r = analyze_matrix(torch.randn(4, 3), top_k=100, knn_k=10, block=2)
    assert len(r.top_scores) == 6 and r.knn.shape == (4, 3)
    assert (r.top_scores[:-1] >= r.top_scores[1:]).all()


def test_jaccard_helpers():
    assert jaccard({1, 2}, {2, 3}) == pytest.approx(1 / 3)
    assert jaccard(set(), set()) == 1.0
    a = torch.tensor([[1, 2], [0, 2]])
    assert mean_knn_jaccard(a, a) == 1.0
    assert mean_knn_jaccard(a, torch.tensor([[1, 3], [3, 4]])) == pytest.approx((1 / 3 + 0) / 2)


# --- nulls ------------------------------------------------------------------------------------


def test_random_like_keeps_shape_and_row_norms_and_is_seeded():
    w = torch.randn(300, 24) * torch.linspace(0.1, 3, 300).unsqueeze(1)
    r = random_like(w, seed=3)
    assert r.shape == w.shape
    assert torch.allclose(r.norm(dim=1).sort().values, w.norm(dim=1).sort().values, atol=1e-5)
    assert torch.equal(r, random_like(w, seed=3)) and not torch.equal(r, random_like(w, seed=4))


@pytest.mark.parametrize("k_a,n_a,k_b,n_b,n_common", [(50, 400, 50, 400, 400), (40, 300, 60, 500, 120)])
def test_chance_jaccard_between_sets_matches_simulation(k_a, n_a, k_b, n_b, n_common):
    # items 0..n_a-1 and (n_a - n_common)..: the last n_common of the first set are the first of the second
    g = torch.Generator().manual_seed(0)
    offset = n_a - n_common
    sims = [
        jaccard(
            set(torch.randperm(n_a, generator=g)[:k_a].tolist()),
            {offset + i for i in torch.randperm(n_b, generator=g)[:k_b].tolist()},
        )
        for _ in range(4000)
    ]
    expected = chance_jaccard_between(k_a, n_a, k_b, n_b, n_common)
    assert sum(sims) / len(sims) == pytest.approx(expected, rel=0.1)
    if n_a == n_b == n_common and k_a == k_b:
        assert expected == pytest.approx(chance_jaccard(k_a, n_a))
    assert chance_jaccard_between(k_a, n_a, k_b, n_b, 0) == 0.0  # nothing in common: never shared


@pytest.mark.parametrize("k,n", [(50, 400), (10, 99)])
def test_chance_jaccard_matches_simulation(k, n):
    g = torch.Generator().manual_seed(0)
    sims = [
        jaccard(set(torch.randperm(n, generator=g)[:k].tolist()), set(torch.randperm(n, generator=g)[:k].tolist()))
        for _ in range(4000)
    ]
    assert sum(sims) / len(sims) == pytest.approx(chance_jaccard(k, n), rel=0.1)


def test_a_random_matrix_matches_its_null_and_planted_structure_beats_it():
    torch.manual_seed(0)
    w = torch.randn(600, 32)
    learned, null = analyze_matrix(w, top_k=200), analyze_matrix(random_like(w, seed=1), top_k=200)
    assert float(learned.top_scores.mean()) == pytest.approx(float(null.top_scores.mean()), abs=0.02)
    assert float(learned.knn_scores[:, 0].mean()) == pytest.approx(float(null.knn_scores[:, 0].mean()), abs=0.02)
    planted = w.clone()
    planted[300:400] = planted[200:300] + 0.3 * torch.randn(100, 32)  # 100 near-duplicate pairs
    s = analyze_matrix(planted, top_k=200)
    assert float(s.top_scores.mean()) > float(null.top_scores.mean()) + 0.15
    # two unrelated random matrices share top pairs at about the chance level (≈ 0 here)
    n_pairs = 600 * 599 // 2
    other = analyze_matrix(random_like(w, seed=2), top_k=200)
    assert jaccard(pair_set(null.top_pairs), pair_set(other.top_pairs)) < 20 * chance_jaccard(200, n_pairs) + 0.01


def test_rank_correlation_equals_brute_force_spearman():
    x, y = torch.randn(500), torch.randn(500)
    y = x + y
    rx, ry = x.argsort().argsort().double(), y.argsort().argsort().double()
    brute = float(torch.corrcoef(torch.stack([rx, ry]))[0, 1])
    assert rank_correlation(x, y) == pytest.approx(brute, abs=1e-9)
    assert rank_correlation(x, -x) == pytest.approx(-1.0)


def test_sample_pairs_are_distinct_rows_in_order_and_seeded():
    p = sample_pairs(7, 1000, seed=1)
    assert (p[:, 0] < p[:, 1]).all() and p.max() < 7 and p.min() >= 0
    assert len({tuple(x) for x in p.tolist()}) == 21  # every pair of 7 rows turns up
    assert torch.equal(p, sample_pairs(7, 1000, seed=1))
