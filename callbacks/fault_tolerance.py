"""No lost work: a checkpoint when training stops early (SIGTERM, Ctrl-C, an exception), and the weights
training ended with in ``last.ckpt``."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from tiedtransformer.errors import WriteError
from tiedtransformer.run.files import RunDir


class CheckpointOnFailure(L.Callback):
    """On SIGTERM, SIGINT or an exception during fit, writes ``checkpoints/last-interrupted.ckpt``
    (``--ckpt_path last`` picks the newest ``last*`` checkpoint). Never one with non-finite weights,
    and none after a failed write (a full disk): the checkpoints written before are intact.

    Args:
        filename: Checkpoint file name inside the run's checkpoint folder.
    """

    def __init__(self, filename: str = RunDir.INTERRUPTED):
        self.filename = filename
        self.saved: Path | None = None

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if trainer.state.fn != "fit" or trainer.global_step == 0:
            return
        if isinstance(exception, WriteError):  # the disk is the trouble: another write would fail too
            return
        # A failure on one rank only cannot run the collective save on all of them; SIGTERM and
        # Ctrl-C reach every rank, single-process runs always save.
        if trainer.world_size > 1 and not isinstance(exception, (SIGTERMException, KeyboardInterrupt)):
            return
        if not all(torch.isfinite(p).all() for p in pl_module.parameters()):
            print("not writing a checkpoint: the weights are not finite", flush=True)
            return
        run = RunDir.of(trainer)
        self.saved = run.checkpoints / self.filename
        trainer.save_checkpoint(self.saved)
        if trainer.is_global_zero:
            print(
                f"\n{type(exception).__name__} at step {trainer.global_step}: checkpoint written to {self.saved}\n"
                f"resume: tiedtransformer fit -c {run.config} --ckpt_path last",
                flush=True,
            )


class FinalCheckpoint(L.Callback):
    """The weights training ended with, in ``last.ckpt``. ModelCheckpoint writes it after a validation or at an
    epoch's end, so a run whose ``max_steps`` falls inside an epoch kept an older step there, while its final
    evaluation and ``summary.json`` describe the newer weights (and ``export``/``predict`` of the run read
    ``last.ckpt``). One of the default callbacks, so it runs before CheckpointAveraging loads an average."""

    def on_train_end(self, trainer, pl_module) -> None:
        ckpt = trainer.checkpoint_callback
        if ckpt is None or not getattr(ckpt, "save_last", False) or not getattr(ckpt, "dirpath", None):
            return
        if getattr(ckpt, "_last_global_step_saved", None) == trainer.global_step or trainer.global_step == 0:
            return
        trainer.save_checkpoint(Path(ckpt.dirpath) / f"{ckpt.CHECKPOINT_NAME_LAST}{ckpt.FILE_EXTENSION}")
