"""The training bar of a streamed epoch: Lightning cannot know a stream's length before reading it, so its bar
shows ``247/?``; from the second epoch on, the first epoch's count is known, and the bar shows it as the total,
with the time left."""

from __future__ import annotations

import math

from lightning.pytorch.callbacks import TQDMProgressBar


class StreamProgressBar(TQDMProgressBar):
    """Lightning's bar, whose training total is the previous epoch's number of batches where the loader has
    no length (a streamed corpus). Epochs of a stream differ by a few batches (shuffled buckets): the total
    is the last epoch's, and the count may end a little before or after it."""

    def __init__(self, refresh_rate: int = 1, process_position: int = 0, leave: bool = False):
        super().__init__(refresh_rate, process_position, leave)
        self.last_epoch_batches: int | None = None

    @property
    def total_train_batches(self) -> int | float:
        total = super().total_train_batches
        return self.last_epoch_batches if math.isinf(total) and self.last_epoch_batches else total

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self.last_epoch_batches = trainer.fit_loop.epoch_loop.batch_progress.current.ready or None
