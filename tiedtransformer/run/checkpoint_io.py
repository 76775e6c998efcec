"""Lightning's checkpoint file I/O, ours (the one part of the checkpoint code that needs Lightning)."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from tiedtransformer.atomic import atomic_path
from tiedtransformer.run.checkpoint import load_checkpoint


class CheckpointFiles(TorchCheckpointIO):
    """Lightning's checkpoint file I/O, ours: loads through :func:`load_checkpoint` (data only), and
    writes atomically (a temporary file beside, flushed, then renamed over the old one), so that a
    write that fails part-way (a full disk) or a killed process leaves the previous checkpoint as it
    was and a clear message (:class:`~tiedtransformer.errors.WriteError`), not a half file."""

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return load_checkpoint(path)

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save(checkpoint, tmp)


def save(obj, path: Path) -> None:
    """``torch.save`` into ``path`` (a seam for the tests' failing disk)."""
    torch.save(obj, path)
