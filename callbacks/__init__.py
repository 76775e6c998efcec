"""Lightning callbacks of tiedtransformer: thin, they decide *when*; the package decides *what*."""

from .averaging import CheckpointAveraging
from .embeddings import EmbeddingSnapshot, SimilarityReport
from .fault_tolerance import CheckpointOnFailure
from .run_summary import RunSummary
from .translation_writer import TranslationWriter

__all__ = ["CheckpointAveraging", "CheckpointOnFailure", "EmbeddingSnapshot", "RunSummary", "SimilarityReport", "TranslationWriter"]
