"""How long a developer waits for the tests: the README's command 2 after the install (``python -m pytest``:
every test, on every core through pytest-xdist) and the fast lane for development (``-m "not slow"``), each
timed from outside as whole commands, ``--rounds`` times, interleaved. A figure, not a comparison: the
suite has no peer. The install is not timed (pip's time depends on its cache).

    python -m benchmarks.suite                   # the fast lane, then the whole suite
    python -m benchmarks.suite --only fast

Each JSON line: the command, pytest's options, the commit measured, wall seconds per round (median, spread),
the tests passed / failed / skipped / in error of the last round, the workers pytest-xdist
created, and the last round's 20 slowest tests (pytest's
``--durations=20``: seconds of one phase, call or setup, of one test on its worker). Under CI=true (as ``.ci/run``) so that a test that
skips outside CI fails instead.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import emit, spread
from tiedtransformer.run.machine import code_commit

REPO = Path(__file__).resolve().parents[1]
LANES = {"fast": ["-m", "not slow"], "full": []}
OPTIONS = ["-p", "no:cacheprovider", "--durations=20"]  # besides the lane's: no cache written, the slowest kept
KINDS = ("passed", "failed", "skipped", "errors")  # under xdist the summary line does not count deselected tests


def counts(stdout: str) -> dict:
    """pytest's final summary line (``==== 701 passed, 3 skipped, 128 warnings in 541.32s (0:09:01) ====``, the
    last line of its stdout that ends in a duration) as numbers, the workers pytest-xdist created, and the
    ``--durations`` lines."""
    summary = [line for line in stdout.splitlines() if re.search(r"\bin [\d.]+s\b", line)][-1:]
    found = dict.fromkeys(KINDS, 0)
    for n, kind in re.findall(r"(\d+) (passed|failed|skipped|errors?)\b", summary[0] if summary else ""):
        found["errors" if kind.startswith("error") else kind] = int(n)
    workers = re.search(r"created: (\d+)/\d+ workers", stdout)
    slowest = [
        {"s": float(s), "phase": phase, "test": test}
        for s, phase, test in re.findall(r"^\s*([\d.]+)s (call|setup|teardown)\s+(\S+)", stdout, re.MULTILINE)
    ]
    return found | {"workers": int(workers.group(1)) if workers else 1, "slowest": slowest}


def run_lane(lane: str) -> tuple[float, dict]:
    """One round of ``python -m pytest`` with the lane's options: wall seconds and its counts."""
    cmd = [sys.executable, "-m", "pytest", *OPTIONS, *LANES[lane]]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, "CI": "true"}, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return seconds, counts(proc.stdout) | {"returncode": proc.returncode}


def commit() -> str | None:
    """The commit measured (with ``+`` if the work tree differs from it)."""
    return code_commit(REPO)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=sorted(LANES), help="one lane (default: both)")
    p.add_argument("--rounds", type=int, default=1, help="rounds of each lane, interleaved")
    args = p.parse_args()
    lanes = [args.only] if args.only else ["fast", "full"]
    seconds: dict[str, list[float]] = {lane: [] for lane in lanes}
    last: dict[str, dict] = {}
    for _ in range(args.rounds):
        for lane in lanes:
            s, last[lane] = run_lane(lane)
            seconds[lane].append(s)
            shown = {k: v for k, v in last[lane].items() if k != "slowest"}
            print(f"{lane}: {s:.0f} s, {shown}", file=sys.stderr, flush=True)
    for lane in lanes:
        emit(
            "suite",
            {
                "lane": lane,
                "pytest_options": " ".join([*OPTIONS, *LANES[lane]]),
                "commit": commit(),
                "wall_s": spread(seconds[lane]),
                **last[lane],
            },
        )


if __name__ == "__main__":
    main()
