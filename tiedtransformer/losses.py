"""Training objective and schedule as pure functions."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .specials import PAD_ID


def label_smoothed_nll(
    logits: torch.Tensor, target: torch.Tensor, epsilon: float, ignore_index: int = PAD_ID
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed label-smoothed cross-entropy, summed plain NLL and the count of non-pad target tokens.

    Smoothing spreads ε uniformly over the whole vocabulary (as ``F.cross_entropy(label_smoothing=ε)``
    and Szegedy et al. 2016); the plain NLL is what perplexity is made of.
    """
    lprobs = F.log_softmax(logits.float(), dim=-1).view(-1, logits.size(-1))  # (N, V)
    target = target.reshape(-1)
    keep = target != ignore_index
    # Per-row terms masked afterwards: selecting the kept rows first would copy the (N, V) matrix.
    nll_rows = -lprobs.gather(1, target.clamp(min=0)[:, None]).squeeze(1)  # (N,)
    smooth_rows = -lprobs.mean(dim=-1)  # (N,)
    nll = (nll_rows * keep).sum()
    smooth = (smooth_rows * keep).sum()
    return (1.0 - epsilon) * nll + epsilon * smooth, nll, keep.sum()


def inverse_sqrt_factor(step: int, warmup_steps: int) -> float:
    """Multiplier of the peak learning rate: linear warm-up, then decay with 1/sqrt(step)
    (Vaswani et al. 2017, 5.3). Equals 1 at ``step == warmup_steps``."""
    step = max(step, 1)
    if warmup_steps <= 0:
        return 1.0 / math.sqrt(step)
    return min(step / warmup_steps, math.sqrt(warmup_steps / step))
