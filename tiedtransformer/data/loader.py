"""The per-rank stream of training batches across epochs and ranks: the one part of the data path
that runs collectives (ranks agree when all have run out)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator

import torch
import torch.distributed as dist

from tiedtransformer.data.batching import Batch


class RankBatches:
    """What ``train_dataloader`` returns: a fresh loader per epoch (``make_loader(epoch)``, so the
    epoch seeds the shuffle in every worker). Under DDP the ranks agree at every batch whether any
    still has data: a rank that ran out yields stand-in batches (no gradient) until all have, and
    then all stop together. No rank hangs in a collective waiting for another, and no pair is
    dropped to even the ranks out.

    Resuming mid-epoch: ``done()`` says how many batches of this epoch were already trained; the
    stream (deterministic for a given epoch) is replayed and those batches are skipped, so training
    continues with exactly the batch that would have come next."""

    def __init__(
        self,
        make_loader: Callable[[int], Iterable[Batch]],
        epoch: Callable[[], int],
        done: Callable[[], int] = lambda: 0,
    ):
        self.make_loader, self.epoch, self.done = make_loader, epoch, done

    def __iter__(self) -> Iterator[Batch]:
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        real = iter(self.make_loader(self.epoch()))
        stream = itertools.chain(real, itertools.repeat(None)) if distributed else real  # None: ran out
        skip = self.done()
        if skip:
            for _ in itertools.islice(stream, skip):  # replay without training; same on every rank
                pass
        if not distributed:
            yield from stream
            return
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
        while True:
            batch = next(stream)
            more = torch.tensor([float(batch is not None)], device=device)
            dist.all_reduce(more, op=dist.ReduceOp.MAX)
            if not more.item():
                return
            yield batch if batch is not None else Batch.stand_in()
