"""The similarity statistics of one token matrix, in one tuple (:data:`STATISTICS`): what each is called in
``similarity.json``, in words, and on W&B, and how it is computed. The report, its W&B scalars, the seed
experiment's tables, the comparison page and ``tiedtransformer analyze`` iterate over this tuple: a new
statistic is one entry here (``tests/test_schema.py`` checks that it reaches every one of them)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields

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


# --- the analysis of a dump as typed records: similarity.json (and a kept run's similarity-final.json) ----------


def _known(cls) -> set[str]:
    return {f.name for f in fields(cls)} - {"extra", "statistics"}


@dataclass
class MatrixAnalysis:
    """One matrix's analysis: its pairs, its :data:`STATISTICS` (and each null's), what its top pairs are, its
    rare tokens, its cosine histogram. In the file the statistics sit beside the other keys (``mean_top``...);
    a key this version does not know is kept aside (``extra``), a missing one is None or empty (a kept copy
    of a run trims the pairs and drops the histogram)."""

    identical_to: str | None = None
    """The earlier matrix this one is (the same Parameter, tied), or None."""
    n_tokens: int | None = None
    n_pairs: int | None = None
    top_pairs: list = field(default_factory=list)
    """``[token, token, cosine]``, best first."""
    bottom_pairs: list = field(default_factory=list)
    statistics: dict[str, float | None] = field(default_factory=dict)
    """Each statistic of :data:`STATISTICS` by key."""
    kinds: dict | None = None
    """The share of each kind of pair among the top pairs (``pair_kinds``)."""
    nulls: dict[str, dict] = field(default_factory=dict)
    """Per null (``init``, ``random``): its statistics by key, and what else was measured of it."""
    rare: dict | None = None
    histogram: dict | None = None
    """``{"edges": [...], "counts": [...]}`` of every pair's cosine."""
    extra: dict = field(default_factory=dict, repr=False)

    def stat(self, key: str, null: str | None = None) -> float | None:
        """A statistic of the matrix, or of one of its nulls (None where it is missing)."""
        return (self.statistics if null is None else self.nulls.get(null) or {}).get(key)

    @classmethod
    def from_json(cls, data) -> MatrixAnalysis:
        data = data if isinstance(data, dict) else {}
        known = _known(cls)
        return cls(
            **{k: v for k, v in data.items() if k in known and v is not None or k == "identical_to" and k in data},
            statistics={s.key: data[s.key] for s in STATISTICS if s.key in data},
            extra={k: v for k, v in data.items() if k not in known and k not in {s.key for s in STATISTICS}},
        )

    def to_json(self) -> dict:
        out = {
            "identical_to": self.identical_to,
            "n_tokens": self.n_tokens,
            "n_pairs": self.n_pairs,
            "top_pairs": self.top_pairs,
            "bottom_pairs": self.bottom_pairs,
            **self.statistics,
            "kinds": self.kinds,
            "nulls": self.nulls,
            "rare": self.rare,
            "histogram": self.histogram,
        }
        return {k: v for k, v in out.items() if v is not None or k in ("identical_to", "rare")} | self.extra


@dataclass
class DumpAnalysis:
    """The analysis of one dump (``tiedtransformer analyze``, each snapshot of a fit): per matrix a
    :class:`MatrixAnalysis`, across matrices the Jaccard tables of top pairs and k-NN with their chance levels,
    the human-similarity scores (``intrinsic``), and what was analysed how (``meta``, ``options``)."""

    top_k: int | None = None
    knn_k: int | None = None
    matrices: dict[str, MatrixAnalysis] = field(default_factory=dict)
    jaccard_top_pairs: dict = field(default_factory=dict)
    jaccard_knn: dict = field(default_factory=dict)
    chance_jaccard_top_pairs: dict = field(default_factory=dict)
    chance_jaccard_knn: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    intrinsic: dict | None = None
    """Per matrix with English rows: SimLex-999, WordSim-353, plural probes and their random nulls; or
    ``{"skipped": why}``."""
    figures: dict | None = None
    """The figures' file names (not in the file: ``report.md`` shows them)."""
    extra: dict = field(default_factory=dict, repr=False)

    def jaccard(self, kind: str = "top_pairs") -> dict:
        """The Jaccard table of ``top_pairs`` or ``knn`` (``{a: {b: value}}``)."""
        return getattr(self, f"jaccard_{kind}")

    def chance(self, kind: str = "top_pairs") -> dict:
        return getattr(self, f"chance_jaccard_{kind}")

    @classmethod
    def from_json(cls, data) -> DumpAnalysis:
        data = data if isinstance(data, dict) else {}
        known = _known(cls) - {"matrices", "figures"}
        return cls(
            **{k: v for k, v in data.items() if k in known and v is not None},
            matrices={n: MatrixAnalysis.from_json(m) for n, m in (data.get("matrices") or {}).items()},
            extra={k: v for k, v in data.items() if k not in known and k != "matrices"},
        )

    def to_json(self) -> dict:
        out = {
            "top_k": self.top_k,
            "knn_k": self.knn_k,
            "matrices": {n: m.to_json() for n, m in self.matrices.items()},
            "jaccard_top_pairs": self.jaccard_top_pairs,
            "jaccard_knn": self.jaccard_knn,
            "chance_jaccard_top_pairs": self.chance_jaccard_top_pairs,
            "chance_jaccard_knn": self.chance_jaccard_knn,
            "meta": self.meta,
            "options": self.options,
            "intrinsic": self.intrinsic,
        }
        return {k: v for k, v in out.items() if v is not None} | self.extra
