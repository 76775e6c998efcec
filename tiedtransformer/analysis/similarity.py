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


class _RunningPairs:
    """The K best pairs seen so far (largest or smallest cosine), as flat indices i * V + j. Once K
    are known, a block only needs the entries beating the current K-th: one compare instead of a
    top-k over the whole block."""

    def __init__(self, K: int, largest: bool, device):
        self.K, self.largest = K, largest
        self.scores = torch.empty(0, device=device)
        self.index = torch.empty(0, dtype=torch.long, device=device)

    def add(self, sim, upper, flat_of) -> None:
        """Offer the pairs of one block; ``upper`` (bool, or None) marks the entries that are pairs."""
        if self.scores.numel() < self.K:  # still filling: an exact top-K of the block
            fill = float("-inf") if self.largest else float("inf")
            vals = sim if upper is None else sim.masked_fill(~upper, fill)
            s, p = vals.flatten().topk(min(self.K, vals.numel()), largest=self.largest)
            rows, cols = p // sim.size(1), p % sim.size(1)
        else:
            # only rows whose best entry beats the current K-th can add a pair: a row reduction finds
            # them (a few, once K are known), and only those rows are compared entry by entry
            kth = self.scores[-1]
            beyond = torch.gt if self.largest else torch.lt
            extreme = sim.amax(dim=1) if self.largest else sim.amin(dim=1)
            rows = beyond(extreme, kth).nonzero().squeeze(1)
            if rows.numel() == 0:
                return
            sub = sim.index_select(0, rows)
            beats = beyond(sub, kth)
            if upper is not None:
                beats &= upper.index_select(0, rows)
            r, cols = beats.nonzero(as_tuple=True)
            if r.numel() == 0:
                return
            s, rows = sub[r, cols], rows[r]
        self.scores, self.index = _merge_top(self.scores, self.index, s, flat_of(rows, cols), self.K, self.largest)


def _merge_candidates(best_s, best_i, slot, scores, ids, k):
    """Merge candidates into running top-k lists: candidate t (score ``scores[t]``, neighbour ``ids[t]``)
    belongs to list ``slot[t]`` of ``best_s``/``best_i`` (n, k). The candidates are laid out as one row
    per list, padded with -inf, and each list keeps the k best of its old and new entries."""
    n = best_s.size(0)
    order = torch.argsort(slot, stable=True)
    slot, scores, ids = slot[order], scores[order], ids[order]
    counts = torch.bincount(slot, minlength=n)
    place = torch.arange(slot.numel(), device=slot.device) - (counts.cumsum(0) - counts)[slot]
    width = int(counts.max())
    cand_s = torch.full((n, width), float("-inf"), device=best_s.device)
    cand_i = torch.zeros((n, width), dtype=best_i.dtype, device=best_i.device)
    cand_s[slot, place], cand_i[slot, place] = scores, ids
    return _merge_top(best_s, best_i, cand_s, cand_i, k)


def _offer_neighbours(best_s, best_i, sim, ids, k, mask, scratch, by_columns: bool):
    """Merge one block of cosines into running k-NN lists (``best_s``/``best_i``, nearest first): one list
    per row of ``sim`` whose candidates are the columns, numbered ``ids`` (or, ``by_columns``, one per
    column). While some list holds fewer than k, a top-k of each (by columns on a transposed copy in
    ``scratch``: top-k along rows is twice as fast); after that only the entries beating their list's
    k-th so far, found by one comparison (few, once a list has seen a few thousand rows)."""
    kth = best_s[:, -1]
    if bool(torch.isinf(kth).any()):
        m = scratch[: sim.size(1), : sim.size(0)].copy_(sim.T) if by_columns else sim
        s, p = m.topk(min(k, m.size(1)), dim=1)
        return _merge_top(best_s, best_i, s, ids[p], k)
    beats = torch.gt(sim, kth.unsqueeze(0 if by_columns else 1), out=mask)
    r, c = beats.nonzero(as_tuple=True)
    if not r.numel():
        return best_s, best_i
    lists, candidates = (c, r) if by_columns else (r, c)
    return _merge_candidates(best_s, best_i, lists, sim[r, c], ids[candidates], k)


def _bin_dtype(bins: int) -> torch.dtype:
    """The narrowest integer type for the bin numbers 0..bins (``bins``: the excluded entries)."""
    return torch.uint8 if bins < 255 else torch.int32


def _add_histogram(
    hist: torch.Tensor, cosines: torch.Tensor, scratch: torch.Tensor, index: torch.Tensor, exclude=None
) -> None:
    """Add the counts of ``cosines`` in ``len(hist)`` equal bins over [-1, 1] to ``hist``, values past ±1
    (rounding) in the end bins, leaving out the entries ``exclude`` (bool, or None) marks: the counts of
    ``torch.histc(cosines[~exclude].clamp(-1, 1), bins, -1, 1)`` (the same arithmetic, (x + 1) · bins / 2,
    truncated), at a fraction of its time on a CPU. ``scratch`` (float) and ``index`` (``_bin_dtype``)
    are buffers of ``cosines``' shape."""
    bins = hist.numel()
    torch.add(cosines, 1.0, out=scratch).mul_(bins / 2).clamp_(0, bins - 1)
    index.copy_(scratch)  # truncation: the bin
    if exclude is not None:
        index.masked_fill_(exclude, bins)  # an extra bin, dropped below (cheaper than gathering the rest)
    hist += torch.bincount(index.view(-1), minlength=bins + 1)[:bins]


def analyze_matrix(
    w: torch.Tensor, top_k: int = 1000, knn_k: int = 10, bins: int = 200, block: int = 4096
) -> MatrixSimilarity:
    """Top/bottom-K pairs, k-NN and the cosine histogram of the rows of ``w`` (on ``w``'s device)."""
    x = normalize_rows(w)
    V, dev = x.size(0), x.device
    n_pairs = V * (V - 1) // 2
    K, k = min(top_k, n_pairs), min(knn_k, V - 1)
    top, bottom = _RunningPairs(K, True, dev), _RunningPairs(K, False, dev)
    # running k-NN of every row; -inf placeholders lose to any real neighbour (each row has V - 1 >= k)
    knn_s = torch.full((V, k), float("-inf"), device=dev)
    knn_i = torch.zeros((V, k), dtype=torch.long, device=dev)
    hist = torch.zeros(bins, dtype=torch.float64, device=dev)
    b = min(block, V)
    sim_buf = torch.empty(b, b, device=dev)  # reused: a fresh 64 MB block per step costs page faults
    t_buf = torch.empty(b, b, device=dev)  # scratch: the histogram's, and a transposed block's
    bin_buf = torch.empty(b, b, dtype=_bin_dtype(bins), device=dev)  # histogram bin of each cosine
    mask_buf = torch.empty(b, b, dtype=torch.bool, device=dev)
    upper_full = torch.ones(b, b, dtype=torch.bool, device=dev).triu_(diagonal=1)
    lower_full = ~upper_full  # the diagonal and below: not pairs

    for r0 in range(0, V, b):
        r1 = min(r0 + b, V)
        row_s, row_i = knn_s[r0:r1], knn_i[r0:r1]
        for c0 in range(r0, V, b):
            c1 = min(c0 + b, V)
            sim = torch.mm(x[r0:r1], x[c0:c1].T, out=sim_buf[: r1 - r0, : c1 - c0])  # cosines, rows × cols
            diagonal = c0 == r0  # only pairs i < j count; a row is not its own neighbour
            upper = upper_full[: r1 - r0, : c1 - c0] if diagonal else None
            shape = sim.shape
            _add_histogram(
                hist,
                sim,
                t_buf.view(-1)[: sim.numel()].view(shape),  # contiguous: bincount reads it flat
                bin_buf.view(-1)[: sim.numel()].view(shape),
                lower_full[: shape[0], : shape[1]] if diagonal else None,
            )

            def flat_of(rows, cols, r0=r0, c0=c0):
                return (rows + r0) * V + (cols + c0)

            if K:
                bottom.add(sim, upper, flat_of)
            if diagonal:  # after the bottom pairs (where -inf would win), before the top pairs: then a
                sim.fill_diagonal_(float("-inf"))  # row's maximum is not its own cosine of 1
            if K:
                top.add(sim, upper, flat_of)
            if k:
                mask = mask_buf[: r1 - r0, : c1 - c0]
                # neighbours of rows r0:r1 among c0:c1, then (the same block read by columns) of c0:c1 among r0:r1
                cols, rows = torch.arange(c0, c1, device=dev), torch.arange(r0, r1, device=dev)
                row_s, row_i = _offer_neighbours(row_s, row_i, sim, cols, k, mask, t_buf, by_columns=False)
                if not diagonal:
                    knn_s[c0:c1], knn_i[c0:c1] = _offer_neighbours(
                        knn_s[c0:c1], knn_i[c0:c1], sim, rows, k, mask, t_buf, by_columns=True
                    )
        knn_s[r0:r1], knn_i[r0:r1] = row_s, row_i

    return MatrixSimilarity(  # scores clamped at the end: rounding can pass ±1
        top_pairs=torch.stack([top.index // V, top.index % V], dim=1),
        top_scores=top.scores.clamp(-1.0, 1.0),
        bottom_pairs=torch.stack([bottom.index // V, bottom.index % V], dim=1),
        bottom_scores=bottom.scores.clamp(-1.0, 1.0),
        knn=knn_i,
        knn_scores=knn_s.clamp(-1.0, 1.0),
        histogram=hist,
        n_pairs=n_pairs,
    )


def jaccard(a: set, b: set) -> float:
    """|a ∩ b| / |a ∪ b|; 1 for two empty sets."""
    return len(a & b) / len(a | b) if a | b else 1.0


def pair_set(pairs: torch.Tensor) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in pairs.tolist()}


def mean_knn_jaccard(knn_a: torch.Tensor, knn_b: torch.Tensor) -> float:
    """Mean over rows of the Jaccard overlap of two k-NN lists (same row order)."""
    scores = [jaccard(set(a), set(b)) for a, b in zip(knn_a.tolist(), knn_b.tolist())]
    return sum(scores) / len(scores) if scores else 1.0


# --- nulls: what the statistics give without learned structure --------------------------------


def random_like(w: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A random matrix of ``w``'s shape and row-norm distribution: isotropic Gaussian rows, each scaled
    to the norm of a row of ``w`` (a seeded permutation of them). Cosines ignore norms, so what this
    null fixes is the shape (number of rows V, width d); its norms keep it a drop-in for any statistic."""
    g = torch.Generator().manual_seed(seed)
    x = normalize_rows(torch.randn(w.shape, generator=g))
    norms = w.float().norm(dim=1)
    return x * norms[torch.randperm(len(norms), generator=g)].unsqueeze(1)


def chance_jaccard(k: int, n: int) -> float:
    """Expected Jaccard of two independent uniformly random k-subsets of n items: their overlap
    averages k²/n (hypergeometric), their union 2k minus it. The chance level of the top-pair Jaccard
    (k pairs of n = V(V-1)/2) and of one token's k-NN Jaccard (k of its V - 1 others)."""
    if n <= 0 or k <= 0:
        return float("nan")
    k = min(k, n)
    overlap = k * k / n
    return overlap / (2 * k - overlap)


def sample_pairs(n: int, count: int, seed: int = 0) -> torch.Tensor:
    """``count`` distinct-row pairs (i < j) of n rows drawn uniformly (with replacement), seeded: a fixed
    sample of pairs on which two matrices' cosines are compared."""
    if n < 2:
        return torch.empty(0, 2, dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(n, (count,), generator=g)
    j = (i + torch.randint(1, n, (count,), generator=g)) % n  # any row but i
    return torch.stack([torch.minimum(i, j), torch.maximum(i, j)], dim=1)


def pair_cosines(w: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    x = normalize_rows(w)
    return (x[pairs[:, 0]] * x[pairs[:, 1]]).sum(1)


def rank_correlation(x: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman's ρ of two vectors of continuous values (ranks by sorting; exact ties, which have
    probability zero for cosines of real-valued rows, get arbitrary distinct ranks)."""
    if x.numel() < 3:
        return float("nan")

    def ranks(v):
        r = torch.empty(v.numel(), dtype=torch.float64)
        r[v.argsort()] = torch.arange(v.numel(), dtype=torch.float64)
        return r - r.mean()

    rx, ry = ranks(x.flatten()), ranks(y.flatten())
    return float((rx * ry).sum() / (rx.norm() * ry.norm()))
