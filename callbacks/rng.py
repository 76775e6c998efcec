"""The random state in checkpoints, so that a resumed run draws the dropout masks the uninterrupted
run would have drawn."""

from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch


def rng_state() -> dict:
    """Python's, NumPy's, torch's (and CUDA's) random state, as plain types and tensors, so that a
    checkpoint holding it loads with ``torch.load(weights_only=True)``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RngState(L.Callback):
    """Saves the random state in each checkpoint and restores it on ``--ckpt_path``. (Lightning keeps
    no random state in its checkpoints; ``seed_everything`` alone would replay the first epoch's masks.)"""

    def state_dict(self) -> dict:
        return rng_state()

    def load_state_dict(self, state_dict: dict) -> None:
        set_rng_state(state_dict)
