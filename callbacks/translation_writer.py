"""Writes ``predict`` translations to a file, in input order."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.callbacks import BasePredictionWriter

from tiedtransformer.atomic import atomic_write_text
from tiedtransformer.data.corpus import output_lines
from tiedtransformer.data.translating import PredictInput
from tiedtransformer.training.distributed import all_gather_objects


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
        self._write(trainer, [p for part in all_gather_objects(pairs) for p in part])

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if stage == "predict" and self.written is None:  # no line to translate: Lightning ran no predict hook
            self._write(trainer, [])

    def _write(self, trainer, pairs: list[tuple[int, str]]) -> None:
        if trainer.global_rank != 0:
            return
        inp = predict_input(trainer)
        lines = output_lines(pairs, inp.blank, inp.lines)
        path = Path(self.output or inp.default_output)
        atomic_write_text(path, "".join(text + "\n" for text in lines))
        self.written = path
        empty = len(inp.blank)
        print(
            f"translations of {len(lines)} lines written to {path}"
            + (f" ({empty} blank or unreadable input lines give empty lines)" if empty else "")
        )


def predict_input(trainer) -> PredictInput:
    """The :class:`PredictInput` behind the trainer's predict loader (the datamodule's ``predict_dataloader``)."""
    loaders = trainer.predict_dataloaders
    loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
    if not isinstance(getattr(loader, "dataset", None), PredictInput):
        raise TypeError("TranslationWriter writes what TranslationData.predict_dataloader reads (a PredictInput)")
    return loader.dataset
