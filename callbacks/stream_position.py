"""Tells the training stream which batches were trained, so that its position in checkpoints is exact."""

from __future__ import annotations

import lightning as L

from tiedtransformer.data.loader import TrainBatches


class TrainStreamPosition(L.Callback):
    """After each trained batch, advances the position of the :class:`TrainBatches` stream, which
    checkpoints keep (the stream itself only sees batches handed out, one ahead). It runs before the
    callbacks that save checkpoints (ModelCheckpoint is always last).

    On loading a checkpoint written at the end of an epoch, it marks Lightning's loop state as the next
    epoch's start (:func:`next_epoch_start`), where the stream's own position already is."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loader = trainer.train_dataloader
        if isinstance(loader, TrainBatches):
            loader.batch_trained()

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if "fit_loop" in checkpoint.get("loops", {}):
            next_epoch_start(checkpoint["loops"]["fit_loop"])


def next_epoch_start(fit_loop: dict) -> bool:
    """A fit loop state saved after an epoch's last batch (its epoch processed, not yet counted completed:
    ``on_train_epoch_end`` or the end of training wrote it) becomes the state at the next epoch's start:
    the epoch completed, no batch of the next one started. Lightning 2.6 resumes such a state differently
    when ``trainer.max_steps`` is set (it then always restarts the epoch loop): it finished the old epoch
    again, then skipped the next one without a batch, so that a resumed run lost an epoch of its
    ``max_epochs``, or trained nothing. Returns whether the state was such a state (and changed)."""
    epochs, batches = fit_loop.get("epoch_progress"), fit_loop.get("epoch_loop.batch_progress")
    if not epochs or not batches:
        return False
    ended = [
        e["ready"] == e["started"] == e["processed"] == e["completed"] + 1 for e in (epochs["total"], epochs["current"])
    ]
    if not (all(ended) and batches.get("is_last_batch")):
        return False
    for e in (epochs["total"], epochs["current"]):
        e["completed"] = e["processed"]
    batches["current"] = dict.fromkeys(batches["current"], 0)
    batches["is_last_batch"] = False
    return True
