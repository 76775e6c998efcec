"""Keeps what the results page needs of finished runs in the repository, so that a later session on a fresh
machine (no runs/) still has them, and a grid resumed there skips them:

    python docs/keep_runs.py 'runs/seed-experiment-3k-*'            # into docs/results/grid/<run>/
    cp -r docs/results/grid/seed-experiment-3k-* runs/              # on a fresh machine, before the sweep

Per run: summary.json, config.yaml, metrics.csv (and its resumptions'), the final translations and references,
trajectory.json (the geometry of every snapshot against its nulls; computed here from the dumps if the
run has none) and similarity-final.json (the last snapshot's similarity report, trimmed). The dumps and
checkpoints stay out of git.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import shutil
from pathlib import Path

from tiedtransformer.analysis import schema
from tiedtransformer.analysis.dumps import read_dump
from tiedtransformer.analysis.options import AnalysisOptions
from tiedtransformer.analysis.report import analyze_to_dir
from tiedtransformer.analysis.trajectory import run_trajectory
from tiedtransformer.atomic import atomic_write_json
from tiedtransformer.run.files import DumpDir, RunDir
from tiedtransformer.run.summary import FitSummary

KEPT = Path(__file__).resolve().parent / "results" / "grid"


SHOWN_PAIRS = 100  # top pairs kept per matrix (the kinds and Jaccard tables are computed on all of them first)


def final_similarity(run: RunDir, again: bool = False) -> schema.DumpAnalysis | None:
    """The last snapshot's similarity report, analysed again with this code when it lacks what the page
    reads (the kinds of the top pairs beside their nulls; SimLex where gensim is installed), or always with
    ``again``; trimmed: the first top pairs, no bottom pairs or histograms."""
    dumps = run.dumps()
    if not dumps:
        return None
    last, path = dumps[-1], DumpDir(dumps[-1]).similarity
    report = schema.DumpAnalysis.from_json(json.loads(path.read_text()) if path.is_file() else {})
    # an older report: without the kinds of the top pairs, or without a statistic the schema has now
    stale = not report.matrices or any(
        m.kinds is None or set(schema.KEYS) - set(m.statistics) for m in report.matrices.values()
    )
    no_simlex = "skipped" in (report.intrinsic or {"skipped": ""}) and importlib.util.find_spec("gensim")
    if again or stale or no_simlex:
        init = read_dump(run.snapshot(0)) if run.snapshot(0) != last and run.snapshot(0).is_dir() else None
        report, _ = analyze_to_dir(read_dump(last), last, AnalysisOptions(), None, init)
    for m in report.matrices.values():
        m.top_pairs, m.bottom_pairs, m.histogram = m.top_pairs[:SHOWN_PAIRS], m.bottom_pairs[:10], None
    return report


def keep(run: RunDir, into: Path, again: bool = False) -> list[Path]:
    if not run.trajectory.is_file():
        run_trajectory(run.path)
    out = into / run.name
    if (report := final_similarity(run, again)) is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / run.final_similarity.name, report.to_json())
    lang = (run.read_summary() or FitSummary()).target_lang
    files = [run.summary, run.config, run.trajectory, *run.metrics_files()]
    files += [run.final_translations(lang, stage) for stage in ("val", "test")] + [run.final_references(lang, "test")]
    copied = [out / run.final_similarity.name] if report is not None else []
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
    ap.add_argument("--again", action="store_true", help="analyse each run's last snapshot again with this code")
    args = ap.parse_args()
    for d in sorted(glob.glob(args.runs)):
        run = RunDir(d)
        if run.finished():
            print(f"{run.name}: {len(keep(run, Path(args.into), args.again))} files")


if __name__ == "__main__":
    main()
