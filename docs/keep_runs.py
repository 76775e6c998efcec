"""Keeps what the results page needs of finished runs in the repository, so that a later session on a fresh
machine (no runs/) still has them, and a grid resumed there skips them:

    python docs/keep_runs.py 'runs/seed-experiment-3k-*'            # into docs/results/grid/<run>/
    cp -r docs/results/grid/seed-experiment-3k-* runs/              # on a fresh machine, before the sweep

Per run: summary.json, config.yaml, metrics.csv (and its resumptions'), the final translations and references,
and trajectory.json (the geometry of every snapshot against its nulls; computed here from the dumps if the
run has none). The dumps and checkpoints stay out of git.
"""

from __future__ import annotations

import argparse
import glob
import shutil
from pathlib import Path

from tiedtransformer.analysis.trajectory import run_trajectory
from tiedtransformer.training.runs import RunDir

KEPT = Path(__file__).resolve().parent / "results" / "grid"


def keep(run: RunDir, into: Path) -> list[Path]:
    if not run.trajectory.is_file():
        run_trajectory(run.path)
    lang = str((run.read_summary() or {}).get("direction") or "-").split("-")[-1]
    files = [run.summary, run.config, run.trajectory, *run.metrics_files()]
    files += [run.final_translations(lang, stage) for stage in ("val", "test")] + [run.final_references(lang, "test")]
    out = into / run.name
    copied = []
    for f in files:
        if f.is_file():
            target = out / f.relative_to(run.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            copied.append(Path(shutil.copy2(f, target)))
    return copied


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", help="a glob of run directories; unfinished runs are left out")
    ap.add_argument("--into", default=str(KEPT))
    args = ap.parse_args()
    for d in sorted(glob.glob(args.runs)):
        run = RunDir(d)
        if run.finished():
            print(f"{run.name}: {len(keep(run, Path(args.into)))} files")


if __name__ == "__main__":
    main()
