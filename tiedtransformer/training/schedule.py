"""Learning-rate schedules as pure functions: Vaswani et al.'s inverse square root, and decays that
know the training budget."""

from __future__ import annotations

import math
from typing import Literal, get_args

Schedule = Literal["inverse_sqrt", "linear", "cosine"]
SCHEDULES: tuple[str, ...] = get_args(Schedule)


def inverse_sqrt_factor(step: int, warmup_steps: int) -> float:
    """Multiplier of the peak learning rate: linear warm-up, then decay with 1/sqrt(step)
    (Vaswani et al. 2017, 5.3). Equals 1 at ``step == warmup_steps``."""
    step = max(step, 1)
    if warmup_steps <= 0:
        return 1.0 / math.sqrt(step)
    return min(step / warmup_steps, math.sqrt(warmup_steps / step))


def budget_progress(
    step: int, max_steps: int | None, elapsed_s: float | None, max_time_s: float | None
) -> float | None:
    """Fraction of the training budget used, in [0, 1]: the larger of ``step / max_steps`` and
    ``elapsed_s / max_time_s`` (whichever budget ends training first); None when neither is set."""
    parts = []
    if max_steps is not None and max_steps > 0:
        parts.append(step / max_steps)
    if max_time_s is not None and max_time_s > 0 and elapsed_s is not None:
        parts.append(elapsed_s / max_time_s)
    return min(1.0, max(0.0, *parts)) if parts else None


def lr_factor(
    step: int, warmup_steps: int, schedule: Schedule, progress: float | None = None, final_factor: float = 0.0
) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (1-based).

    ``inverse_sqrt``: Vaswani et al.'s warm-up and 1/sqrt(step) decay (:func:`inverse_sqrt_factor`).
    ``linear`` / ``cosine``: linear warm-up over ``warmup_steps`` times a decay from 1 to
    ``final_factor`` over the budget's ``progress`` (0 at the start, 1 when training must stop), so a
    run that is stopped by ``max_steps`` or ``max_time`` ends with the learning rate annealed, however
    many steps the machine manages in that time.
    """
    if schedule == "inverse_sqrt":
        return inverse_sqrt_factor(step, warmup_steps)
    if progress is None:
        raise ValueError(f"the {schedule} schedule needs the budget's progress (max_steps or max_time)")
    warm = min(1.0, max(step, 1) / warmup_steps) if warmup_steps > 0 else 1.0
    p = min(1.0, max(0.0, progress))
    shape = 1.0 - p if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * p))
    return warm * (final_factor + (1.0 - final_factor) * shape)
