"""Lightning callbacks of tiedtransformer: thin, they decide *when*; the package decides *what*."""

from tiedtransformer.callbacks.averaging import CheckpointAveraging
from tiedtransformer.callbacks.embeddings import EmbeddingSnapshot, SimilarityReport
from tiedtransformer.callbacks.fault_tolerance import CheckpointOnFailure, FinalCheckpoint
from tiedtransformer.callbacks.final_translations import FinalTranslations
from tiedtransformer.callbacks.progress import StreamProgressBar
from tiedtransformer.callbacks.rng import RngState
from tiedtransformer.callbacks.run_summary import RunSummary
from tiedtransformer.callbacks.stream_position import TrainStreamPosition
from tiedtransformer.callbacks.translation_writer import TranslationWriter

__all__ = [
    "CheckpointAveraging",
    "CheckpointOnFailure",
    "EmbeddingSnapshot",
    "FinalCheckpoint",
    "FinalTranslations",
    "RngState",
    "RunSummary",
    "SimilarityReport",
    "StreamProgressBar",
    "TrainStreamPosition",
    "TranslationWriter",
]
