"""What the seed experiment measured, for the four token matrices of one dump: top/bottom cosine
pairs, their means, similarity-vs-rank curves, cosine histograms, k-NN lists, and the Jaccard
overlaps of top pairs and of k-NN sets between matrices (and between snapshots of one run)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tiedtransformer.analysis.dumps import EmbeddingDump
from tiedtransformer.analysis.similarity import MatrixSimilarity, analyze_matrix, jaccard
from tiedtransformer.model.network import first_tied
from tiedtransformer.specials import NUM_SPECIALS


@dataclass
class AnalysisOptions:
    """What the similarity analysis computes; shared by ``tiedtransformer analyze`` and the
    ``SimilarityReport`` callback."""

    top_k: int = 1000
    """Pairs kept per matrix, the most and the least similar."""
    knn_k: int = 10
    """Nearest neighbours per token."""
    bins: int = 200
    """Bins of the cosine histogram."""
    min_count: int = 0
    """Leave out tokens seen fewer times in the vocabulary's training sample."""
    device: str | None = None
    """Where the similarities are computed; default: cuda when available, else cpu."""

    def resolved_device(self) -> str:
        return self.device or ("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class MatrixResult:
    name: str
    tokens: list[str]  # token text of the analysed rows (specials and rare tokens left out)
    sim: MatrixSimilarity
    identical_to: str | None = None  # the same Parameter as this earlier matrix (tying)

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


def analyze_dump(
    dump: EmbeddingDump, options: AnalysisOptions = AnalysisOptions(), progress=None
) -> dict[str, MatrixResult]:
    """Analyse every matrix once; a matrix tied to an earlier one reuses its result."""
    o, device = options, options.resolved_device()
    results: dict[str, MatrixResult] = {}
    ties = first_tied(dump.matrices)
    for name, w in dump.matrices.items():
        if (first := ties[name]) is not None:
            r = results[first]
            results[name] = MatrixResult(name, r.tokens, r.sim, identical_to=first)
            continue
        rows = kept_rows(dump, name, o.min_count)
        tokens = dump.tokens(name)
        sim = analyze_matrix(w[rows].to(device), top_k=o.top_k, knn_k=o.knn_k, bins=o.bins)
        sim = MatrixSimilarity(**{k: v.cpu() if torch.is_tensor(v) else v for k, v in vars(sim).items()})
        results[name] = MatrixResult(name, [tokens[i] for i in rows.tolist()], sim)
        if progress is not None:
            progress(name)
    return results


def jaccard_tables(results: dict[str, MatrixResult]) -> tuple[dict, dict]:
    """(top-pair Jaccard, mean per-token k-NN Jaccard), each {a: {b: value}}; symmetric, diagonal 1."""
    names = list(results)
    pairs = {n: results[n].pair_set() for n in names}
    knn = {n: results[n].knn_sets() for n in names}
    top_j = {a: {b: jaccard(pairs[a], pairs[b]) for b in names} for a in names}
    knn_j = {a: {b: _mean_knn_jaccard(knn[a], knn[b]) for b in names} for a in names}
    return top_j, knn_j


def _mean_knn_jaccard(a: dict[str, set[str]], b: dict[str, set[str]]) -> float:
    common = a.keys() & b.keys()
    return sum(jaccard(a[t], b[t]) for t in common) / len(common) if common else float("nan")


def snapshot_overlap(previous: dict[str, MatrixResult], current: dict[str, MatrixResult]) -> dict:
    """How settled each matrix is: Jaccard of its top pairs and mean k-NN Jaccard, previous vs now."""
    return {
        n: {
            "top_pairs": jaccard(previous[n].pair_set(), current[n].pair_set()),
            "knn": _mean_knn_jaccard(previous[n].knn_sets(), current[n].knn_sets()),
        }
        for n in current
        if n in previous
    }


def summarize(results: dict[str, MatrixResult], top_k: int, bins: int) -> dict:
    """The JSON report: per matrix the pairs and their means, across matrices the Jaccard tables."""
    top_j, knn_j = jaccard_tables(results)
    edges = torch.linspace(-1, 1, bins + 1).tolist()
    matrices = {}
    for name, r in results.items():
        top, bottom = r.pair_texts("top"), r.pair_texts("bottom")
        matrices[name] = {
            "identical_to": r.identical_to,
            "n_tokens": len(r.tokens),
            "n_pairs": r.sim.n_pairs,
            "top_pairs": [list(p) for p in top],
            "bottom_pairs": [list(p) for p in bottom],
            "mean_top": sum(s for *_, s in top) / len(top) if top else None,
            "mean_bottom": sum(s for *_, s in bottom) / len(bottom) if bottom else None,
            "mean_all": _hist_mean(r.sim.histogram, edges),
            "histogram": {"edges": edges, "counts": [int(c) for c in r.sim.histogram.tolist()]},
        }
    return {"top_k": top_k, "matrices": matrices, "jaccard_top_pairs": top_j, "jaccard_knn": knn_j}


def _hist_mean(hist: torch.Tensor, edges: list[float]) -> float | None:
    centers = torch.tensor([(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])], dtype=torch.float64)
    total = float(hist.sum())
    return float((hist * centers).sum() / total) if total else None
