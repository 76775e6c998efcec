"""Lightning callbacks of tiedtransformer: thin, they decide *when*; the package decides *what*."""

from .embeddings import EmbeddingSnapshot, SimilarityReport
from .fault_tolerance import CheckpointOnFailure
from .run_summary import RunSummary
from .translation_writer import TranslationWriter

__all__ = ["CheckpointOnFailure", "EmbeddingSnapshot", "RunSummary", "SimilarityReport", "TranslationWriter"]
