"""The similarity statistics of one token matrix, in one tuple (:data:`STATISTICS`): what each is called in
``similarity.json``, in words, and on W&B, and how it is computed. The report, its W&B scalars, the seed
experiment's tables, the comparison page and ``tiedtransformer analyze`` iterate over this tuple: a new
statistic is one entry here (``tests/test_schema.py`` checks that it reaches every one of them)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from tiedtransformer.analysis.similarity import MatrixSimilarity


@dataclass(frozen=True)
class Statistic:
    key: str
    """Its key in similarity.json, per matrix and per null (``nulls.init``, ``nulls.random``)."""
    label: str
    """In words, for table headers; ``K`` stands for the analysis's top_k."""
    scalar: str
    """Its W&B scalar, ``emb/<matrix>/<scalar>`` (``K`` replaced), with ``_init`` / ``_random`` for its nulls."""
    compute: Callable[[MatrixSimilarity], float | None]

    def words(self, top_k) -> str:
        return self.label.replace("K", str(top_k))

    def scalar_name(self, top_k) -> str:
        return self.scalar.replace("K", str(top_k))


def _mean(t: torch.Tensor) -> float | None:
    return float(t.double().mean()) if t.numel() else None


def histogram_mean(hist: torch.Tensor) -> float | None:
    """The mean cosine of every pair, from the histogram over [-1, 1] (bin centres)."""
    bins = hist.numel()
    centers = (torch.arange(bins, dtype=torch.float64) + 0.5) * (2 / bins) - 1
    total = float(hist.sum())
    return float((hist.double() * centers).sum() / total) if total else None


STATISTICS: tuple[Statistic, ...] = (
    Statistic("mean_top", "mean cosine of the top-K pairs", "mean_topK", lambda s: _mean(s.top_scores)),
    Statistic("mean_bottom", "mean cosine of the bottom-K pairs", "mean_bottomK", lambda s: _mean(s.bottom_scores)),
    Statistic("mean_all", "mean cosine of all pairs", "mean_all", lambda s: histogram_mean(s.histogram)),
    Statistic(
        "mean_nn",
        "mean cosine of each token's nearest neighbour",
        "mean_nn",
        lambda s: _mean(s.knn_scores[:, 0]) if s.knn_scores.numel() else None,
    ),
)
KEYS = tuple(s.key for s in STATISTICS)


def statistics(sim: MatrixSimilarity) -> dict[str, float | None]:
    """Every statistic of one matrix's similarity analysis, by key."""
    return {s.key: s.compute(sim) for s in STATISTICS}


def is_statistics(d) -> bool:
    """Whether ``d`` holds exactly the statistics of :data:`STATISTICS`, each finite or None (a cached null
    of an older schema is not, and is computed again)."""
    return (
        isinstance(d, dict)
        and set(d) == set(KEYS)
        and all(v is None or (isinstance(v, float | int) and math.isfinite(v)) for v in d.values())
    )
