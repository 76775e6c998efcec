"""Writes ``predict`` translations to a file, in input order."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.callbacks import BasePredictionWriter

from tiedtransformer.atomic import atomic_write_text
from tiedtransformer.errors import TrainingError
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
        dm = trainer.datamodule
        lines = output_lines(pairs, dm.predict_blank, dm.predict_lines)
        path = Path(self.output or f"{dm.hparams.predict_path}.{dm.tgt_lang}")
        atomic_write_text(path, "".join(text + "\n" for text in lines))
        self.written = path
        empty = len(dm.predict_blank)
        print(
            f"translations of {len(lines)} lines written to {path}"
            + (f" ({empty} blank or unreadable input lines give empty lines)" if empty else "")
        )


def output_lines(translated: list[tuple[int, str]], blank: list[int], n: int) -> list[str]:
    """One output line per input line, in input order: the translations by line position, an empty
    line for each blank input line; line breaks inside a translation (a vocabulary can hold pieces
    with CR, U+2028 and the like) become spaces, so that line N of the output is line N's translation.
    A line missing or given twice is an error, never a shifted file."""
    by_line = dict(p for p in translated if p[0] >= 0)  # -1: a rank's stand-in line (DataModule.predict_dataloader)
    translated = [p for p in translated if p[0] >= 0]
    by_line.update((i, "") for i in blank)
    if sorted(by_line) != list(range(n)) or len(translated) + len(blank) != n:
        raise TrainingError(f"predict: {len(translated)} translations and {len(blank)} blank lines for {n} input lines")
    return [" ".join(by_line[i].splitlines()) for i in range(n)]
