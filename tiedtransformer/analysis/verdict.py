"""One rule for every finding of the results page: a learned statistic against its nulls, across seeds.

*reproduced* only when the learned statistic differs from every null by more than the seed-to-seed spread,
in the direction the seed reported; *not reproduced* when it differs from a null by more than the spread the
other way; *not testable* otherwise (it does not beat its nulls, or there are too few seeds to have a spread)."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import mean, stdev

REPRODUCED, NOT_REPRODUCED, NOT_TESTABLE = "reproduced", "not reproduced", "not testable"


@dataclass(frozen=True)
class Verdict:
    outcome: str  # REPRODUCED, NOT_REPRODUCED or NOT_TESTABLE
    threshold: float | None  # the spread a difference must exceed (None: fewer than two seeds)
    gaps: dict[str, float]  # mean learned minus mean null, per null
    seeds: int
    basis: str = "seed-to-seed spread"  # what set the threshold: the spread, or the measure's floor (resolution)

    def describe(self) -> str:
        """The threshold first, then the numbers, then the outcome."""
        if self.threshold is None:
            return f"{self.seeds} seed(s): no spread to test against; {self.outcome}"
        gaps = ", ".join(f"{k} {v:+.4f}" for k, v in self.gaps.items())
        return f"threshold {self.threshold:.4f} ({self.basis}); learned minus null: {gaps}; {self.outcome}"


def spread(*per_seed: list[float]) -> float | None:
    """The seed-to-seed spread: the largest sample standard deviation over seeds among the given series
    (the learned statistic and each null vary with the seed); None with fewer than two seeds."""
    sds = [stdev(xs) for xs in per_seed if len(xs) >= 2]
    return max(sds) if sds else None


def verdict(
    learned: list[float],
    nulls: dict[str, list[float]],
    direction: int,
    resolution: float = 0.0,
    floor: str = "the measure's resolution",
) -> Verdict:
    """``learned``: the statistic per seed; ``nulls``: each null (e.g. ``init``, ``random``) per seed;
    ``direction``: +1 when the seed found the learned value above the nulls, -1 below; ``resolution``: the
    smallest difference the statistic can show (e.g. one pair of a top-K set), the threshold's floor when
    the seeds agree to the last digit (a Jaccard of 0 in every seed against a chance level of 1e-6 is no
    difference); ``floor``: what that floor is, in words (the verdict says so where it set the threshold)."""
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, not {direction!r}")
    if not nulls:
        raise ValueError("a verdict needs at least one null")
    gaps = {name: mean(learned) - mean(values) for name, values in nulls.items()}
    threshold = spread(learned, *nulls.values())
    if threshold is None:
        return Verdict(NOT_TESTABLE, None, gaps, len(learned))
    basis = "seed-to-seed spread" if threshold >= resolution else f"{floor}, above the spread"
    threshold = max(threshold, resolution)
    signs = [0 if abs(g) <= threshold else (1 if g * direction > 0 else -1) for g in gaps.values()]
    if -1 in signs:
        outcome = NOT_REPRODUCED
    elif all(s == 1 for s in signs):
        outcome = REPRODUCED
    else:
        outcome = NOT_TESTABLE
    return Verdict(outcome, threshold, gaps, len(learned), basis)
