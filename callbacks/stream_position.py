"""Tells the training stream which batches were trained, so that its position in checkpoints is exact."""

from __future__ import annotations

import sys

import lightning as L

from tiedtransformer.data.loader import TrainBatches


class TrainStreamPosition(L.Callback):
    """After each trained batch, advances the position of the :class:`TrainBatches` stream, which
    checkpoints keep (the stream itself only sees batches handed out, one ahead). It runs before the
    callbacks that save checkpoints (ModelCheckpoint is always last).

    On loading a checkpoint written at the end of an epoch, it marks Lightning's loop state as the next
    epoch's start (:func:`next_epoch_start`), where the stream's own position already is. At the end of the
    first epoch, now that the stream's length is known, it says whether validation can ever run
    (:func:`unreachable_validation`)."""

    def __init__(self):
        self._checked = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loader = trainer.train_dataloader
        if isinstance(loader, TrainBatches):
            loader.batch_trained()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._checked or not trainer.is_global_zero:
            return
        self._checked = True
        batches = trainer.fit_loop.epoch_loop.batch_progress.current.ready
        if message := unreachable_validation(trainer.val_check_batch, trainer.check_val_every_n_epoch, batches):
            print(message, file=sys.stderr, flush=True)

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


def unreachable_validation(interval, every_n_epochs: int | None, batches: int) -> str | None:
    """Lightning counts an int ``val_check_interval`` in training batches within each epoch (unless
    ``check_val_every_n_epoch`` is null). A sized training set longer than the interval is refused up front;
    a stream's length is known only once an epoch has been read, and an epoch shorter than the interval
    never validates, silently. The warning for that case, else None."""
    if every_n_epochs is None or not isinstance(interval, int) or isinstance(interval, bool) or interval <= batches:
        return None
    return (
        f"warning: no validation ran in this epoch: trainer.val_check_interval={interval} training batches is "
        f"longer than an epoch ({batches} batches), and Lightning counts it within each epoch, so no epoch will "
        "validate. Validate every N optimizer steps across epochs with model.val_every_n_steps=N, or set "
        "trainer.check_val_every_n_epoch=null."
    )
