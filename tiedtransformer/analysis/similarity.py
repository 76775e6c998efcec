"""Cosine-similarity structure of one token matrix, exact and in blocks; pure functions.

For a (V, d) matrix, :func:`analyze_matrix` finds the top-K and bottom-K pairs of distinct rows by
cosine, every row's k nearest neighbours, and a histogram of all V(V-1)/2 pairwise cosines, without
ever holding the V×V similarity matrix: it visits the upper-triangular blocks (I, J ≥ I) of it, each
computed once by a matmul and used for the rows of I and (transposed) of J.

Exactness: every global top-K pair lies in its block's top-K, and every row's k nearest neighbours
lie in the top-k of each block row it is taken from, so merging block results gives the exact answer.
Where several pairs tie at the K-th place, which of them is kept is unspecified. The blocks hold
cosines scaled for the histogram; the scores returned, scaled back, are as close to the exact cosines
as a plain fp32 product of the unit rows (within about 1e-6 of fp64; tested).
A zero row has cosine 0 with everything (no NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tiedtransformer.analysis.options import BINS, KNN_K, TOP_K


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
        self.offer(s, flat_of(rows, cols))

    @property
    def full(self) -> bool:
        return self.scores.numel() == self.K

    def offer(self, scores: torch.Tensor, flat: torch.Tensor) -> None:
        """Keep the K best of the running pairs and these (scores, flat indices)."""
        self.scores, self.index = _merge_top(self.scores, self.index, scores, flat, self.K, self.largest)


def _merge_candidates(best_s, best_i, slot, scores, ids, k):
    """Merge candidates into running top-k lists: candidate t (score ``scores[t]``, neighbour ``ids[t]``)
    belongs to list ``slot[t]`` of ``best_s``/``best_i`` (n, k). The candidates are laid out as one row
    per list, padded with -inf, and each list keeps the k best of its old and new entries."""
    if not slot.numel():
        return best_s, best_i
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


def _true_positions(mask: torch.Tensor) -> torch.Tensor:
    """Flat positions of the True entries of a contiguous bool vector whose length is a multiple of 8,
    by way of its 8-byte words: a scan of an eighth as many elements, then the few words holding one."""
    words = mask.view(torch.int64).nonzero().squeeze(1)
    byte_of_word, byte = mask.view(-1, 8)[words].nonzero(as_tuple=True)
    return words[byte_of_word] * 8 + byte


def _bin_dtype(bins: int) -> torch.dtype:
    """The narrowest integer type for the bin numbers 0..bins + 2 (see :func:`_add_histogram`)."""
    return torch.uint8 if bins + 2 <= 255 else torch.int32


def _add_histogram(hist: torch.Tensor, scaled: torch.Tensor, index: torch.Tensor, exclude=None) -> None:
    """Add to ``hist`` the counts of cosines in ``len(hist)`` equal bins over [-1, 1], given as
    ``scaled`` = (cosine + 1) · bins / 2 + 1 (what the product of the scaled rows gives, see
    :func:`_scaled_rows`), leaving out the entries ``exclude`` (bool, or None) marks. Truncating
    ``scaled`` gives histc's bin + 1 (never a negative number, whose conversion to an integer is not
    defined); a cosine rounded past -1 lands in 0, past 1 in bins + 1: both are counted in the end bins,
    as ``torch.histc(cosines.clamp(-1, 1), bins, -1, 1)`` does. ``index`` (``_bin_dtype``) is a buffer of
    ``scaled``'s shape, contiguous."""
    bins = hist.numel()
    index.copy_(scaled)  # truncation
    if exclude is not None:
        index.masked_fill_(exclude, bins + 2)  # an extra bin, dropped below (cheaper than gathering the rest)
    counts = torch.bincount(index.view(-1), minlength=bins + 3).to(hist.dtype)
    hist += counts[1 : bins + 1]
    hist[0] += counts[0]
    hist[-1] += counts[bins + 1]


def _bin_of(scaled: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The histogram bin + 1 (see :func:`_add_histogram`) of each scaled cosine ``t``, as ``dtype``: its
    truncation, so every entry beating ``t`` has a bin number at least this (truncation is monotone);
    -inf (an unfilled k-NN place) gives 0, which every entry passes."""
    return scaled.clamp(min=0).to(dtype)


def _scaled_rows(x: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit rows ``x`` as two matrices whose products are ``left[i] · right[j]`` = (cosine + 1) · bins / 2
    + 1: the left rows are ``x`` · bins / 2, the right ones ``x``, with one more column holding
    bins / 2 + 1 on the left and 1 on the right (a zero row's products are that constant, exactly), and
    zeros to a width that is a multiple of 8. Every histogram bin is then one truncation of a product,
    and the order of the cosines, which all other statistics need, is unchanged."""
    V, d = x.shape
    width = (d + 1 + 7) // 8 * 8
    left, right = torch.zeros(V, width, device=x.device), torch.zeros(V, width, device=x.device)
    torch.mul(x, bins / 2, out=left[:, :d])
    right[:, :d] = x
    left[:, d], right[:, d] = bins / 2 + 1, 1.0
    return left, right


def _tiles(V: int, block: int, small: int) -> tuple[list[tuple[int, int, int, int]], list[tuple[int, int, int, int]]]:
    """The V×V similarity matrix's diagonal tiles (``small`` wide, half of each wasted: below the diagonal)
    and the tiles of its strict upper triangle (``block`` × ``block``, and ``small`` × ``small`` inside
    each diagonal ``block``), as (r0, r1, c0, c1): every pair i < j lies in exactly one tile, above a
    diagonal tile's diagonal or in an upper tile."""
    diagonal, upper = [], []
    for r0 in range(0, V, block):
        r1 = min(r0 + block, V)
        inner = [(s, min(s + small, r1)) for s in range(r0, r1, small)]
        diagonal += [(s0, s1, s0, s1) for s0, s1 in inner]
        upper += [(s0, s1, t0, t1) for s0, s1 in inner for t0, t1 in inner if t0 > s0]
        upper += [(r0, r1, c0, min(c0 + block, V)) for c0 in range(r1, V, block)]
    return diagonal, upper


def analyze_matrix(
    w: torch.Tensor, top_k: int = TOP_K, knn_k: int = KNN_K, bins: int = BINS, block: int = 4096
) -> MatrixSimilarity:
    """Top/bottom-K pairs, k-NN and the cosine histogram of the rows of ``w`` (on ``w``'s device).

    Two passes over the tiles of :func:`_tiles`: first the diagonal ones, which give every row's k-NN
    list its first k entries (a top-k of the tile's rows); then the others, where each row's and each
    column's list only takes the entries beating its k-th so far (one comparison each, one scan for
    their positions, and few of them: the lists already hold the best of a tile). The same scan finds
    the pairs beating the K-th top pair (a row's bar is the lower of its k-th and that K-th): no pass
    of their own. The products are of
    :func:`_scaled_rows`, from which a histogram bin is one truncation."""
    x = normalize_rows(w)
    V, dev = x.size(0), x.device
    n_pairs = V * (V - 1) // 2
    K, k = min(top_k, n_pairs), min(knn_k, V - 1)
    left, right = _scaled_rows(x, bins)
    top, bottom = _RunningPairs(K, True, dev), _RunningPairs(K, False, dev)
    # running k-NN of every row; -inf placeholders lose to any real neighbour (each row has V - 1 >= k)
    knn_s = torch.full((V, k), float("-inf"), device=dev)
    knn_i = torch.zeros((V, k), dtype=torch.long, device=dev)
    hist = torch.zeros(bins, dtype=torch.float64, device=dev)
    b = min(block, V)
    small = max(1, b // 4)  # diagonal tiles a quarter of a block wide: a quarter of the products wasted below them
    diagonal, upper = _tiles(V, b, small)
    # buffers reused tile after tile (a fresh 64 MB block per step costs page faults), used through
    # contiguous views of their first r × c elements; the masks rounded up to whole 8-byte words
    sim_buf = torch.empty(b * b, device=dev)
    bin_buf = torch.empty(b * b, dtype=_bin_dtype(bins), device=dev)
    mask_buf = torch.zeros(b * b + 8, dtype=torch.bool, device=dev)
    col_buf = torch.empty(b * b, dtype=torch.bool, device=dev)
    lower_full = torch.ones(small, small, dtype=torch.bool, device=dev).tril_()  # the diagonal and below
    upper_full = ~lower_full

    def product(r0, r1, c0, c1):
        sim = torch.mm(left[r0:r1], right[c0:c1].T, out=sim_buf[: (r1 - r0) * (c1 - c0)].view(r1 - r0, c1 - c0))
        idx = bin_buf[: sim.numel()].view(sim.shape)

        def flat_of(rows, cols):
            return (rows + r0) * V + (cols + c0)

        return sim, idx, flat_of

    for r0, r1, _, _ in diagonal:  # pairs i < j, and each row's first k neighbours
        sim, idx, flat_of = product(r0, r1, r0, r1)
        n = r1 - r0
        _add_histogram(hist, sim, idx, lower_full[:n, :n])
        if K:
            bottom.add(sim, upper_full[:n, :n], flat_of)
        sim.fill_diagonal_(float("-inf"))  # after the bottom pairs (where it would win): not its own neighbour
        if K:
            top.add(sim, upper_full[:n, :n], flat_of)
        if k:
            s, p = sim.topk(min(k, n), dim=1)
            knn_s[r0:r1], knn_i[r0:r1] = _merge_top(knn_s[r0:r1], knn_i[r0:r1], s, p + r0, k)

    for r0, r1, c0, c1 in upper:  # rows r0:r1 against columns c0:c1, all pairs
        sim, idx, flat_of = product(r0, r1, c0, c1)
        r, c = sim.shape
        _add_histogram(hist, sim, idx)
        # once K top pairs are known and there are k-NN lists, the scan below finds the pairs beating
        # the K-th too (its row threshold lowered to that K-th where it is above): no pass of its own
        fold_top = bool(K) and bool(k) and top.full
        if K:
            bottom.add(sim, None, flat_of)
            if not fold_top:
                top.add(sim, None, flat_of)
        if not k:
            continue
        row_kth, col_kth = knn_s[r0:r1, -1].clone(), knn_s[c0:c1, -1].clone()
        row_bar = torch.clamp(row_kth, max=top.scores[-1]) if fold_top else row_kth
        # the entries beating their row's bar or their column's k-th, found in one scan
        words = (r * c + 7) // 8 * 8
        mask = mask_buf[:words]
        mask[r * c :] = False
        row_test, col_test = mask[: r * c].view(r, c), col_buf[: r * c].view(r, c)
        torch.gt(sim, row_bar.unsqueeze(1), out=row_test)
        # the columns' test is on the histogram's bins, a byte an entry (a quarter of the reading, and
        # torch compares bytes with a row vector fast): an entry beating its column's k-th lies in that
        # k-th's bin or above. The few others it lets through are dropped below, where each candidate
        # is compared with its row's and its column's k-th.
        row_test |= torch.ge(idx, _bin_of(col_kth, idx.dtype).unsqueeze(0), out=col_test)
        p = _true_positions(mask)
        if p.numel() > max(r * c // 64, 4096):  # cosines piled up in one bin (equal rows, say): the exact test
            torch.gt(sim, row_bar.unsqueeze(1), out=row_test)
            row_test |= torch.gt(sim, col_kth.unsqueeze(0), out=col_test)
            p = _true_positions(mask)
        rows, cols = p // c, p % c
        s = sim.view(-1)[p]
        if fold_top:
            pair = s > top.scores[-1]
            top.offer(s[pair], flat_of(rows[pair], cols[pair]))
        for lists, own, other, other_base, kth in (
            (slice(r0, r1), rows, cols, c0, row_kth),
            (slice(c0, c1), cols, rows, r0, col_kth),
        ):
            take = s > kth[own]
            knn_s[lists], knn_i[lists] = _merge_candidates(
                knn_s[lists], knn_i[lists], own[take], s[take], other[take] + other_base, k
            )

    def cosines(scaled):  # back from the products of the scaled rows; as close to the exact cosine as
        return ((scaled - (bins / 2 + 1)) / (bins / 2)).clamp(-1.0, 1.0)  # an fp32 product of unit rows

    def pairs(running):
        return torch.stack([running.index // V, running.index % V], dim=1)

    return MatrixSimilarity(
        top_pairs=pairs(top),
        top_scores=cosines(top.scores),
        bottom_pairs=pairs(bottom),
        bottom_scores=cosines(bottom.scores),
        knn=knn_i,
        knn_scores=cosines(knn_s),
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


def chance_jaccard_between(k_a: int, n_a: int, k_b: int, n_b: int, n_common: int) -> float:
    """Expected Jaccard of a uniformly random k_a-subset of n_a items and an independent k_b-subset of n_b items,
    the two sets of items sharing n_common: their overlap averages k_a k_b n_common / (n_a n_b). The chance
    level of two matrices' top-pair Jaccard when they keep different tokens (the source side's and the target
    side's of a joint vocabulary): pairs outside the common tokens can never be shared. Equal sets give
    :func:`chance_jaccard`."""
    if min(n_a, n_b, k_a, k_b) <= 0:
        return float("nan")
    k_a, k_b = min(k_a, n_a), min(k_b, n_b)
    overlap = k_a * k_b * n_common / (n_a * n_b)
    return overlap / (k_a + k_b - overlap)


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
