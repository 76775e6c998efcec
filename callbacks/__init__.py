"""Lightning callbacks of tiedtransformer: thin, they decide *when*; the package decides *what*."""

from .embeddings import EmbeddingSnapshot, SimilarityReport
from .run_summary import RunSummary
from .translation_writer import TranslationWriter

__all__ = ["EmbeddingSnapshot", "RunSummary", "SimilarityReport", "TranslationWriter"]
