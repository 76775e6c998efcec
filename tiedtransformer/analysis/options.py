"""What the similarity analysis computes (:class:`AnalysisOptions`, shared by ``tiedtransformer analyze``,
the ``SimilarityReport`` callback and the analysis itself), in a module that imports no torch, so that the
plain commands' ``--help`` starts at once."""

from __future__ import annotations

from dataclasses import dataclass

from tiedtransformer.errors import ConfigError

TOP_K, KNN_K, BINS = 1000, 10, 200  # the analysis's defaults


@dataclass
class AnalysisOptions:
    """What the similarity analysis computes; shared by ``tiedtransformer analyze`` and the
    ``SimilarityReport`` callback."""

    top_k: int = TOP_K
    """Pairs kept per matrix, the most and the least similar."""
    knn_k: int = KNN_K
    """Nearest neighbours per token."""
    bins: int = BINS
    """Bins of the cosine histogram."""
    min_count: int = 10
    """Leave out tokens seen fewer times in the vocabulary's training sample (0: keep all): rare rows
    collapse together under the output softmax and would fill the top pairs (the report says how
    much, by frequency band)."""
    nulls: bool = True
    """Also analyse a random matrix of the same shape and row norms, and the matrix at initialisation
    where a step-0 snapshot is known, and report the statistics side by side."""
    null_seed: int = 0
    """Seed of the random null matrix."""
    device: str | None = None
    """Where the similarities are computed; default: cuda when available, else cpu."""

    def __post_init__(self):
        for name, least in (("top_k", 0), ("knn_k", 0), ("bins", 1), ("min_count", 0)):
            if getattr(self, name) < least:
                raise ConfigError(f"--analysis.{name}={getattr(self, name)}: must be at least {least}")

    def resolved_device(self) -> str:
        import torch

        return self.device or ("cuda" if torch.cuda.is_available() else "cpu")
