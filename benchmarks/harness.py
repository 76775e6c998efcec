"""The one way every benchmark here times ours against a peer.

* Warm-up excluded: each contestant runs ``warmup`` times before anything is timed.
* Rounds interleaved: round r runs every contestant once, in an order rotated by r, so that a drift of
  the machine (another job, thermal state, frequency) hits all alike and none is always first.
* At least 5 rounds; the median and the spread (min, max) of each, and of the per-round ratios.
* ``ratio`` > 1 always means ours is better (faster, or higher where higher is better).
* The JSON line names the machine and the versions of the libraries that were measured.

Run the benchmarks from the repository root as modules (``python -m benchmarks.decode``); they import
this as ``benchmarks.harness``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

from tiedtransformer.run.machine import machine

MIN_ROUNDS = 5
LIBRARIES = ("torch", "transformers", "ctranslate2", "faiss-cpu", "datasets", "sentencepiece", "lightning", "sacrebleu")


def fit_command(config, *options: str) -> list[str]:
    """``tiedtransformer fit -c CONFIG OPTIONS...`` as a command of this Python."""
    return [sys.executable, "-m", "tiedtransformer", "fit", "-c", str(config), *options]


def interleaved(contestants: dict[str, Callable[[], object]], rounds: int = MIN_ROUNDS, warmup: int = 1) -> dict:
    """Seconds of each call of each contestant, ``rounds`` of them, interleaved (see the module)."""
    if rounds < MIN_ROUNDS:
        raise ValueError(f"at least {MIN_ROUNDS} rounds (got {rounds})")
    names = list(contestants)
    for _ in range(warmup):
        for name in names:
            contestants[name]()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t = time.perf_counter()
            contestants[name]()
            seconds[name].append(time.perf_counter() - t)
    return seconds


def spread(values: list[float]) -> dict:
    """Median, min and max, rounded for a JSON line."""
    return {"median": _round(statistics.median(values)), "min": _round(min(values)), "max": _round(max(values))}


def compare(ours: list[float], peer: list[float], higher_is_better: bool = False) -> dict:
    """``ratio`` (median over the rounds of the per-round ratio) > 1 when ours is better; for times
    (the default) that is peer/ours, for rates ours/peer. Rounds are paired: round r of ours with round
    r of the peer, which ran next to it."""
    if len(ours) != len(peer):
        raise ValueError("ours and the peer need the same number of rounds")
    per_round = [(o / p if higher_is_better else p / o) for o, p in zip(ours, peer)]
    return {
        "ours": spread(ours),
        "peer": spread(peer),
        "ratio": _round(statistics.median(per_round)),
        "ratio_spread": spread(per_round),
        "rounds": len(ours),
    }


def rates(seconds: list[float], work: float) -> list[float]:
    """Work per second of each round (sentences/s, tokens/s...)."""
    return [work / s for s in seconds]


def versions() -> dict:
    """Versions of the libraries measured here that are installed."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def emit(benchmark: str, result: dict, **extra) -> dict:
    """Prints the one JSON line of a benchmark: its result, the machine, the versions and the date."""
    line = {
        "benchmark": benchmark,
        **result,
        **extra,
        "command": command(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "versions": versions(),
    }
    print(json.dumps(line), flush=True)
    return line


def command() -> str:
    """The command that made this line, as it is typed from the repository root."""
    script = os.path.basename(sys.argv[0])
    name = f"-m benchmarks.{script[:-3]}" if script.endswith(".py") else script
    return " ".join(["python", name, *sys.argv[1:]])


def _round(x: float) -> float:
    return float(f"{x:.4g}")
