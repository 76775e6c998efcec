"""The per-rank stream of training batches across epochs and ranks: the one part of the data path
that runs collectives (ranks agree when all have run out)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator

import torch
import torch.distributed as dist

from tiedtransformer.data.batching import Batch


class TrainBatches:
    """What ``train_dataloader`` returns: the rank's training batches, epoch after epoch, as a stateful
    loader. Each epoch is a fresh stream (``make_loader(epoch)``: the epoch seeds the shuffle in every
    worker), deterministic for a given epoch.

    Its state (:meth:`position`, which the DataModule's ``state_dict`` puts into checkpoints and
    :meth:`seek` restores) is the position after the last batch *trained*: ``{"epoch", "trained"}``.
    (Not Lightning's own loader state: Lightning restores that only when the saved epoch was
    unfinished, and the position after an epoch's last batch is the next epoch's start.) Batches handed out but not yet trained (Lightning fetches one ahead) do
    not count; :meth:`batch_trained` is called after each trained batch (the ``TrainStreamPosition``
    callback). Resuming replays the epoch's stream and skips the batches already trained, so training
    continues with exactly the batch that would have come next; after an epoch's last batch it is the
    next epoch from its start. A new iteration that begins before the stream ran out (``limit_train_batches``)
    continues the same epoch's stream where training left it.

    With gradient accumulation (``batches_per_update`` > 1), an epoch whose batches do not fill its last
    update ends with stand-in batches (no gradient) until it does: every epoch is a whole number of
    updates, so that Lightning's batch-counted validation interval (``model.val_every_n_steps`` x the
    accumulation) falls on update boundaries in every epoch, and no checkpoint is written inside an update.

    Under DDP the ranks agree at every batch whether any still has data: a rank that ran out yields
    stand-in batches (no gradient) until all have, and then all stop together. No rank hangs in a
    collective waiting for another, and no pair is dropped to even the ranks out."""

    def __init__(self, make_loader: Callable[[int], Iterable[Batch]], batches_per_update: int = 1):
        self.make_loader = make_loader
        self.batches_per_update = batches_per_update  # the gradient accumulation: epochs end on an update
        self.epoch = 0  # the epoch being streamed
        self.trained = 0  # batches of it trained
        self._handed = 0  # batches of it handed out
        self._ran_out = False  # its stream has no more batches

    def _epoch_done(self) -> bool:
        return self._ran_out and self.trained >= self._handed

    def batch_trained(self) -> None:
        self.trained += 1

    def position(self) -> dict[str, int]:
        if self._epoch_done():
            return {"epoch": self.epoch + 1, "trained": 0}
        return {"epoch": self.epoch, "trained": self.trained}

    def seek(self, state: dict[str, int]) -> None:
        self.epoch, self.trained = int(state["epoch"]), int(state["trained"])
        self._handed, self._ran_out = self.trained, False
        if self.trained:
            print(
                f"resuming epoch {self.epoch} after batch {self.trained}: replaying its data stream to there",
                flush=True,
            )

    def __iter__(self) -> Iterator[Batch]:
        if self._epoch_done():
            self.epoch, self.trained = self.epoch + 1, 0
        self._handed, self._ran_out = self.trained, False
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        real = iter(self.make_loader(self.epoch))
        stream = itertools.chain(real, itertools.repeat(None)) if distributed else real  # None: ran out
        for _ in itertools.islice(stream, self.trained):  # replay without training; the same on every rank
            pass
        for batch in self._agreed(stream) if distributed else stream:
            self._handed += 1
            yield batch
        while self._handed % self.batches_per_update:  # the epoch's last update whole (stand-ins: no gradient)
            self._handed += 1
            yield Batch.stand_in()
        self._ran_out = True

    @staticmethod
    def _agreed(stream: Iterator[Batch | None]) -> Iterator[Batch]:
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
        while True:
            batch = next(stream)
            more = torch.tensor([float(batch is not None)], device=device)
            dist.all_reduce(more, op=dist.ReduceOp.MAX)
            if not more.item():
                return
            yield batch if batch is not None else Batch.stand_in()
