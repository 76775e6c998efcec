"""Tells the training stream which batches were trained, so that its position in checkpoints is exact."""

from __future__ import annotations

import lightning as L

from tiedtransformer.data.loader import TrainBatches


class TrainStreamPosition(L.Callback):
    """After each trained batch, advances the position of the :class:`TrainBatches` stream, which
    checkpoints keep (the stream itself only sees batches handed out, one ahead). It runs before the
    callbacks that save checkpoints (ModelCheckpoint is always last)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loader = trainer.train_dataloader
        if isinstance(loader, TrainBatches):
            loader.batch_trained()
