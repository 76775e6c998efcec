"""Cosine-similarity structure of one token matrix, exact and in one blocked pass; pure functions.

For a (V, d) matrix, :func:`analyze_matrix` finds the top-K and bottom-K pairs of distinct rows by
cosine, every row's k nearest neighbours, and a histogram of all V(V-1)/2 pairwise cosines, without
ever holding the V×V similarity matrix: it visits the upper-triangular blocks (I, J ≥ I) of it, each
computed once by a matmul and used for the rows of I and (transposed) of J.

Exactness: every global top-K pair lies in its block's top-K, and every row's k nearest neighbours
lie in the top-k of each block row it is taken from, so merging block results gives the exact answer.
Where several pairs tie at the K-th place, which of them is kept is unspecified; the scores are exact.
A zero row has cosine 0 with everything (no NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class MatrixSimilarity:
    top_pairs: torch.Tensor  # (K, 2) row indices (i < j), most similar first
    top_scores: torch.Tensor  # (K,)
    bottom_pairs: torch.Tensor  # (K, 2), least similar first
    bottom_scores: torch.Tensor  # (K,)
    knn: torch.Tensor  # (V, k) neighbour indices, nearest first (the row itself excluded)
    knn_scores: torch.Tensor  # (V, k)
    histogram: torch.Tensor  # (bins,) counts of pairwise cosines over [-1, 1]
    n_pairs: int


def normalize_rows(w: torch.Tensor) -> torch.Tensor:
    """Unit rows in fp32; a zero row stays zero."""
    w = w.float()
    norms = w.norm(dim=1, keepdim=True)
    return w / torch.where(norms > 0, norms, torch.ones_like(norms))


def _merge_top(scores, idx, new_scores, new_idx, k, largest=True):
    """Keep the k best of two candidate sets along the last dimension."""
    s, i = torch.cat([scores, new_scores], -1), torch.cat([idx, new_idx], -1)
    best, pos = s.topk(min(k, s.size(-1)), dim=-1, largest=largest, sorted=True)
    return best, i.gather(-1, pos)


def analyze_matrix(
    w: torch.Tensor, top_k: int = 1000, knn_k: int = 10, bins: int = 200, block: int = 4096
) -> MatrixSimilarity:
    """Top/bottom-K pairs, k-NN and the cosine histogram of the rows of ``w`` (on ``w``'s device)."""
    x = normalize_rows(w)
    V, dev = x.size(0), x.device
    n_pairs = V * (V - 1) // 2
    K, k = min(top_k, n_pairs), min(knn_k, V - 1)
    neg_inf, pos_inf = float("-inf"), float("inf")
    top_s = torch.empty(0, device=dev)
    top_i = torch.empty(0, dtype=torch.long, device=dev)
    bot_s, bot_i = top_s.clone(), top_i.clone()
    knn_s = torch.full((V, 0), neg_inf, device=dev)
    knn_i = torch.zeros((V, 0), dtype=torch.long, device=dev)
    hist = torch.zeros(bins, dtype=torch.float64, device=dev)

    for r0 in range(0, V, block):
        r1 = min(r0 + block, V)
        row_s, row_i = knn_s[r0:r1], knn_i[r0:r1]
        for c0 in range(r0, V, block):
            c1 = min(c0 + block, V)
            sim = x[r0:r1] @ x[c0:c1].T  # (b_r, b_c) cosines of rows r0:r1 with rows c0:c1
            sim.clamp_(-1.0, 1.0)  # rounding can pass 1, and histc drops values outside its range
            cols = torch.arange(c0, c1, device=dev)
            if c0 == r0:  # diagonal block: only pairs i < j count; a row is not its own neighbour
                upper = torch.ones_like(sim, dtype=torch.bool).triu(diagonal=1)
                pair_hi = sim.masked_fill(~upper, neg_inf)
                pair_lo = sim.masked_fill(~upper, pos_inf)
                hist += torch.histc(sim[upper], bins=bins, min=-1.0, max=1.0).double()
                nn_block = sim.clone().fill_diagonal_(neg_inf)
            else:
                pair_hi = pair_lo = sim
                hist += torch.histc(sim, bins=bins, min=-1.0, max=1.0).double()
                nn_block = sim
            # top and bottom pairs of this block, as flat indices i * V + j
            flat = (torch.arange(r0, r1, device=dev)[:, None] * V + cols[None, :]).flatten()
            if K:
                s, p = pair_hi.flatten().topk(min(K, pair_hi.numel()))
                top_s, top_i = _merge_top(top_s, top_i, s, flat[p], K)
                s, p = pair_lo.flatten().topk(min(K, pair_lo.numel()), largest=False)
                bot_s, bot_i = _merge_top(bot_s, bot_i, s, flat[p], K, largest=False)
            if k:
                s, p = nn_block.topk(min(k, nn_block.size(1)), dim=1)  # neighbours of rows r0:r1 in c0:c1
                row_s, row_i = _merge_top(row_s, row_i, s, cols[p], k)
                if c0 != r0:  # the same block, read by columns: neighbours of rows c0:c1 in r0:r1
                    s, p = nn_block.topk(min(k, nn_block.size(0)), dim=0)
                    rows = torch.arange(r0, r1, device=dev)
                    knn_s_c, knn_i_c = _merge_top(knn_s[c0:c1], knn_i[c0:c1], s.T, rows[p.T], k)
                    knn_s, knn_i = _assign(knn_s, knn_i, c0, c1, knn_s_c, knn_i_c, k)
        knn_s, knn_i = _assign(knn_s, knn_i, r0, r1, row_s, row_i, k)

    # pairs whose value is ±inf are masked-out positions, only possible when K > real pairs
    return MatrixSimilarity(
        top_pairs=torch.stack([top_i // V, top_i % V], dim=1), top_scores=top_s,
        bottom_pairs=torch.stack([bot_i // V, bot_i % V], dim=1), bottom_scores=bot_s,
        knn=knn_i, knn_scores=knn_s, histogram=hist, n_pairs=n_pairs,
    )  # fmt: skip


def _assign(all_s, all_i, a, b, s, i, k):
    """Write rows a:b of the running k-NN, growing its width to k on first use."""
    if all_s.size(1) < s.size(1):
        pad = s.size(1) - all_s.size(1)
        all_s = torch.cat([all_s, all_s.new_full((all_s.size(0), pad), float("-inf"))], 1)
        all_i = torch.cat([all_i, all_i.new_zeros((all_i.size(0), pad))], 1)
    all_s[a:b, : s.size(1)], all_i[a:b, : i.size(1)] = s, i
    return all_s, all_i


def jaccard(a: set, b: set) -> float:
    """|a ∩ b| / |a ∪ b|; 1 for two empty sets."""
    return len(a & b) / len(a | b) if a | b else 1.0


def pair_set(pairs: torch.Tensor) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in pairs.tolist()}


def mean_knn_jaccard(knn_a: torch.Tensor, knn_b: torch.Tensor) -> float:
    """Mean over rows of the Jaccard overlap of two k-NN lists (same row order)."""
    scores = [jaccard(set(a), set(b)) for a, b in zip(knn_a.tolist(), knn_b.tolist())]
    return sum(scores) / len(scores) if scores else 1.0
