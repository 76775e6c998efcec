"""What the seed experiment measured, for the four token matrices of one dump: top/bottom cosine
pairs, their means, similarity-vs-rank curves, cosine histograms, k-NN lists, and the Jaccard
overlaps of top pairs and of k-NN sets between matrices (and between snapshots of one run).

Every statistic comes with its nulls: the same statistic of the matrix at initialisation (the run's
step-0 snapshot) and of a random matrix of the same shape and row norms; the Jaccard overlaps with
their chance level. Tokens rarer than ``min_count`` in the vocabulary's training sample are left
out: a row that is (almost) never an input is only pushed by the output softmax's gradient, the same
way as every other rare row, so rare rows collapse onto one direction (the representation
degeneration of Gao et al. 2019) and would fill the top pairs with cosines near 1 between pieces
that hardly occur. How much they would have filled is reported (``rare``), with frequency bands."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tiedtransformer.analysis import schema
from tiedtransformer.analysis.dumps import EmbeddingDump
from tiedtransformer.analysis.options import AnalysisOptions
from tiedtransformer.analysis.pair_kinds import kind_shares, random_pair_kinds
from tiedtransformer.analysis.similarity import (
    MatrixSimilarity,
    analyze_matrix,
    chance_jaccard_between,
    jaccard,
    random_like,
)
from tiedtransformer.atomic import atomic_write_json
from tiedtransformer.cache import cache_root
from tiedtransformer.errors import WriteError
from tiedtransformer.model.network import first_tied
from tiedtransformer.specials import NUM_SPECIALS

KIND_PAIRS = 100  # the top pairs whose kinds (pieces, case, inflection, other) are counted


@dataclass
class MatrixResult:
    name: str
    tokens: list[str]  # token text of the analysed rows (specials and rare tokens left out)
    sim: MatrixSimilarity
    identical_to: str | None = None  # the same Parameter as this earlier matrix (tying)
    nulls: dict = field(default_factory=dict)  # "init" / "random" -> statistics of that null (see statistics())
    rare: dict | None = None  # what the rare tokens would have done (see rare_report())

    def pair_texts(self, which: str = "top") -> list[tuple[str, str, float]]:
        pairs, scores = (
            (self.sim.top_pairs, self.sim.top_scores)
            if which == "top"
            else (self.sim.bottom_pairs, self.sim.bottom_scores)
        )
        return [(self.tokens[i], self.tokens[j], float(s)) for (i, j), s in zip(pairs.tolist(), scores.tolist())]

    def pair_set(self) -> set[tuple[str, str]]:
        """Top pairs as unordered token-text pairs, comparable across vocabularies."""
        return {tuple(sorted((a, b))) for a, b, _ in self.pair_texts("top")}

    def knn_sets(self) -> dict[str, set[str]]:
        return {self.tokens[i]: {self.tokens[j] for j in row} for i, row in enumerate(self.sim.knn.tolist())}


def kept_rows(dump: EmbeddingDump, name: str, min_count: int) -> torch.Tensor:
    """Ordinary tokens: not special, and (if counts are known) seen at least ``min_count`` times."""
    n = dump.matrices[name].size(0)
    keep = torch.arange(n) >= NUM_SPECIALS
    counts = (dump.counts or {}).get(dump.side(name))
    if min_count > 0 and counts:
        keep &= torch.tensor(counts[:n]) >= min_count
    return keep.nonzero().squeeze(1)


def _similarity(w: torch.Tensor, o: AnalysisOptions) -> MatrixSimilarity:
    sim = analyze_matrix(w.to(o.resolved_device()), top_k=o.top_k, knn_k=o.knn_k, bins=o.bins)
    return MatrixSimilarity(**{k: v.cpu() if torch.is_tensor(v) else v for k, v in vars(sim).items()})


def null_cache_dir() -> Path:
    """Where the random nulls' statistics are kept: ``nulls`` in the project's cache folder."""
    return cache_root() / "nulls"


def random_null(w: torch.Tensor, o: AnalysisOptions) -> dict[str, float | None]:
    """:func:`statistics` of :func:`random_like` ``(w)``. Cosines ignore row norms, so they depend on
    ``w``'s shape, the seed and the options only: computed once per such key and kept in
    :func:`null_cache_dir` (a JSON file of four numbers), which halves the analysis of every later
    matrix of that shape, e.g. each snapshot of a run. A cache file that cannot be read or is not of
    that form is computed again; one that cannot be written only costs the time."""
    key = f"{w.size(0)}x{w.size(1)}-seed{o.null_seed}-top{o.top_k}-knn{o.knn_k}-bins{o.bins}-torch{torch.__version__}"
    path = null_cache_dir() / f"{key.replace('+', '_')}.json"
    try:
        cached = json.loads(path.read_text())
        if schema.is_statistics(cached):
            return cached
    except (OSError, ValueError):
        pass
    stats = schema.statistics(_similarity(random_like(w, o.null_seed), o))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, stats)
    except (OSError, WriteError):
        pass
    return stats


def frequency_bands(min_count: int) -> list[tuple[int, float]]:
    """Training-count bands [lo, hi): below ``min_count`` (left out), then by decade up to 1000+."""
    edges = sorted({0, 100, 1000, max(min_count, 0)})
    return list(zip(edges, [*edges[1:], float("inf")]))


def rare_report(dump: EmbeddingDump, name: str, o: AnalysisOptions, kept: torch.Tensor) -> dict | None:
    """What leaving out the rare tokens changed: the same analysis over every ordinary token, the share
    of its top pairs that involve a token below ``min_count``, its mean top-K cosine, and per
    frequency band the number of tokens and their mean nearest-neighbour cosine. None when nothing is
    left out (or the counts are unknown)."""
    counts = (dump.counts or {}).get(dump.side(name))
    every = kept_rows(dump, name, 0)
    if not counts or o.min_count <= 0 or len(every) == len(kept):
        return None
    sim = _similarity(dump.matrices[name][every], o)
    c = torch.tensor(counts)[every]
    rare_pair = (c[sim.top_pairs] < o.min_count).any(dim=1) if sim.top_pairs.numel() else torch.zeros(0, dtype=bool)
    nn = sim.knn_scores[:, 0]
    bands = []
    for lo, hi in frequency_bands(o.min_count):
        inside = (c >= lo) & (c < hi)
        bands.append(
            {
                "counts": f"{lo}–{hi - 1:.0f}" if hi != float("inf") else f"{lo}+",
                "left_out": hi <= o.min_count,
                "tokens": int(inside.sum()),
                "mean_nn": float(nn[inside].mean()) if inside.any() else None,
            }
        )
    return {
        "min_count": o.min_count,
        "tokens_left_out": len(every) - len(kept),
        "share_of_top_pairs_with_rare": float(rare_pair.float().mean()) if rare_pair.numel() else None,
        "mean_top_all_tokens": schema.statistics(sim)["mean_top"],
        "bands": bands,
    }


def _init_rows(init: EmbeddingDump | None, dump: EmbeddingDump, name: str) -> torch.Tensor | str:
    """The matrix at initialisation, or why it is not comparable."""
    if init is None:
        return "no step-0 snapshot"
    if name not in init.matrices or init.tokens(name) != dump.tokens(name):
        return "the step-0 snapshot has another vocabulary or matrix set"
    if init.matrices[name].shape != dump.matrices[name].shape:
        return "the step-0 snapshot's matrix has another shape"
    return init.matrices[name]


def analyze_dump(
    dump: EmbeddingDump,
    options: AnalysisOptions = AnalysisOptions(),
    progress=None,
    init: EmbeddingDump | None = None,
) -> dict[str, MatrixResult]:
    """Analyse every matrix once (a matrix tied to an earlier one reuses its result), with its nulls:
    the same rows of ``init`` (the run's step-0 snapshot) and a random matrix of the same shape."""
    o = options
    results: dict[str, MatrixResult] = {}
    ties = first_tied(dump.matrices)
    for name, w in dump.matrices.items():
        if (first := ties[name]) is not None:
            r = results[first]
            results[name] = MatrixResult(name, r.tokens, r.sim, identical_to=first, nulls=r.nulls, rare=r.rare)
            continue
        rows = kept_rows(dump, name, o.min_count)
        tokens = dump.tokens(name)
        result = MatrixResult(name, [tokens[i] for i in rows.tolist()], _similarity(w[rows], o))
        if o.nulls:
            at_init = _init_rows(init, dump, name)
            if isinstance(at_init, str):
                result.nulls["init"] = {"skipped": at_init}
            else:
                sim0 = _similarity(at_init[rows], o)
                at_start = MatrixResult(name, result.tokens, sim0)
                result.nulls["init"] = {
                    **schema.statistics(sim0),
                    "jaccard_top_pairs_with_learned": jaccard(result.pair_set(), at_start.pair_set()),
                    "kinds": kind_shares(at_start.pair_texts("top"), KIND_PAIRS),
                }
            result.nulls["random"] = {**random_null(w[rows], o), "kinds": random_pair_kinds(result.tokens)}
        result.rare = rare_report(dump, name, o, rows)
        results[name] = result
        if progress is not None:
            progress(name)
    return results


def jaccard_tables(results: dict[str, MatrixResult]) -> tuple[dict, dict]:
    """(top-pair Jaccard, mean per-token k-NN Jaccard), each {a: {b: value}}; symmetric, diagonal 1."""
    names = list(results)
    pairs = {n: results[n].pair_set() for n in names}
    knn = {n: results[n].knn_sets() for n in names} if len(names) > 1 else {}  # sets of every token: not for 1
    top_j = {a: {b: 1.0 if a == b else jaccard(pairs[a], pairs[b]) for b in names} for a in names}
    knn_j = {a: {b: 1.0 if a == b else knn_jaccard_by_token(knn[a], knn[b]) for b in names} for a in names}
    return top_j, knn_j


def knn_jaccard_by_token(a: dict[str, set[str]], b: dict[str, set[str]]) -> float:
    """Mean over the tokens both have of the Jaccard overlap of their k nearest neighbours
    (:meth:`MatrixResult.knn_sets`); nan when they share no token."""
    common = a.keys() & b.keys()
    return sum(jaccard(a[t], b[t]) for t in common) / len(common) if common else float("nan")


def snapshot_overlap(previous: dict[str, MatrixResult], current: dict[str, MatrixResult]) -> dict:
    """How settled each matrix is: Jaccard of its top pairs and mean k-NN Jaccard, previous vs now."""
    return {
        n: {
            "top_pairs": jaccard(previous[n].pair_set(), current[n].pair_set()),
            "knn": knn_jaccard_by_token(previous[n].knn_sets(), current[n].knn_sets()),
        }
        for n in current
        if n in previous
    }


def chance_tables(results: dict[str, MatrixResult], top_k: int, knn_k: int) -> tuple[dict, dict]:
    """The chance levels of :func:`jaccard_tables`: two unrelated matrices, each over the tokens it keeps (a
    pair or neighbour outside the tokens both keep can never be shared)."""
    names = list(results)
    sets = {n: set(results[n].tokens) for n in names}

    def pairs(n: int) -> int:
        return n * (n - 1) // 2

    top, knn = {}, {}
    for a in names:
        top[a], knn[a] = {}, {}
        for b in names:
            na, nb, nc = len(sets[a]), len(sets[b]), len(sets[a] & sets[b])
            top[a][b] = chance_jaccard_between(top_k, pairs(na), top_k, pairs(nb), pairs(nc))
            knn[a][b] = chance_jaccard_between(knn_k, na - 1, knn_k, nb - 1, nc - 1)
    return top, knn


def summarize(results: dict[str, MatrixResult], top_k: int, bins: int, knn_k: int) -> schema.DumpAnalysis:
    """The report: per matrix the pairs and their means with their nulls, across matrices the Jaccard tables
    and their chance levels."""
    top_j, knn_j = jaccard_tables(results)
    chance_top, chance_knn = chance_tables(results, top_k, knn_k)
    edges = torch.linspace(-1, 1, bins + 1).tolist()
    matrices = {}
    for name, r in results.items():
        top, bottom = r.pair_texts("top"), r.pair_texts("bottom")
        matrices[name] = schema.MatrixAnalysis(
            identical_to=r.identical_to,
            n_tokens=len(r.tokens),
            n_pairs=r.sim.n_pairs,
            top_pairs=[list(p) for p in top],
            bottom_pairs=[list(p) for p in bottom],
            statistics=schema.statistics(r.sim),
            kinds=kind_shares(top, KIND_PAIRS),
            nulls=r.nulls,
            rare=r.rare,
            histogram={"edges": edges, "counts": [int(c) for c in r.sim.histogram.tolist()]},
        )
    return schema.DumpAnalysis(
        top_k=top_k,
        knn_k=knn_k,
        matrices=matrices,
        jaccard_top_pairs=top_j,
        jaccard_knn=knn_j,
        chance_jaccard_top_pairs=chance_top,
        chance_jaccard_knn=chance_knn,
    )
