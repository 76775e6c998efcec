"""Keeps a run's last N checkpoints and trains on to their average (``--average.last=N``)."""

from __future__ import annotations

from pathlib import Path

import lightning as L

from tiedtransformer.run.checkpoint import load_checkpoint
from tiedtransformer.run.files import RunDir
from tiedtransformer.training.averaging import average_checkpoints, checkpoint_step
from tiedtransformer.training.distributed import is_sharded


class CheckpointAveraging(L.Callback):
    """Keeps a checkpoint after every ``every_n_epochs``-th epoch (or every ``every_n_train_steps``
    steps) in ``checkpoints/kept/``, the newest ``last`` of them, plus one of the final weights. When
    training ends it averages the newest ``last`` into ``checkpoints/averaged.ckpt`` and loads that
    average into the model, so that the final evaluation and the last embedding snapshot see it.

    Args:
        last: Checkpoints to average (the final weights count as one); 0 turns averaging off.
        every_n_epochs: Keep a checkpoint after every N-th epoch.
        every_n_train_steps: Keep one every M optimizer steps instead (0: by epochs).
    """

    def __init__(self, last: int = 0, every_n_epochs: int = 1, every_n_train_steps: int = 0):
        self.last, self.every_n_epochs, self.every_n_train_steps = last, every_n_epochs, every_n_train_steps
        self.averaged: Path | None = None
        self._kept_steps: set[int] = set()  # the same on every rank: decides the collective save

    def _folder(self, trainer) -> Path:
        return RunDir.of(trainer).kept

    def _keep(self, trainer) -> None:
        folder = self._folder(trainer)
        path = folder / RunDir.kept_name(trainer.current_epoch, trainer.global_step)
        if trainer.global_step in self._kept_steps:
            return
        self._kept_steps.add(trainer.global_step)
        trainer.save_checkpoint(path)  # collective under DDP; rank 0 writes
        if trainer.is_global_zero:
            kept = sorted(folder.glob("*.ckpt"), key=checkpoint_step)
            for old in kept[: -self.last]:
                old.unlink()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.last and self.every_n_train_steps and trainer.global_step % self.every_n_train_steps == 0:
            self._keep(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.last and not self.every_n_train_steps and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._keep(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        if not self.last or trainer.global_step == 0:
            return
        self._keep(trainer)  # the final weights, if training stopped between two kept checkpoints
        folder = self._folder(trainer)
        kept = sorted(folder.glob("*.ckpt"), key=checkpoint_step)[-self.last :]
        out = RunDir.of(trainer).averaged
        if trainer.is_global_zero:
            average_checkpoints(kept, out)
            print(f"averaged {len(kept)} checkpoints ({', '.join(p.name for p in kept)}) into {out}", flush=True)
        trainer.strategy.barrier()
        self.averaged = out
        if is_sharded(pl_module.net):
            print("FSDP: the final evaluation uses the final weights; the average is in the file above", flush=True)
            return
        pl_module.load_state_dict(load_checkpoint(out)["state_dict"])
        pl_module.final_weights = f"average of {len(kept)} checkpoints ({', '.join(p.name for p in kept)})"
