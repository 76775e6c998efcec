"""Writes ``predict`` translations to a file, in input order."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.callbacks import BasePredictionWriter

from tiedtransformer.training.distributed import all_gather_objects
from tiedtransformer.training.runs import atomic_write_text


class TranslationWriter(BasePredictionWriter):
    """Collects the translations of ``predict`` and writes them one per line, in input order.

    Args:
        output: File to write; default: ``<predict_path>.<target language>``.
    """

    def __init__(self, output: str | None = None):
        super().__init__(write_interval="epoch")
        self.output = output
        self.written: Path | None = None

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        pairs = [p for batch in predictions for p in batch]
        pairs = [p for part in all_gather_objects(pairs) for p in part]
        if trainer.global_rank != 0:
            return
        dm = trainer.datamodule
        path = Path(self.output or f"{dm.hparams.predict_path}.{dm.tgt_lang}")
        atomic_write_text(path, "".join(text + "\n" for _, text in sorted(pairs)))
        self.written = path
        print(f"translations of {len(pairs)} sentences written to {path}")
