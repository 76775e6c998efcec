"""Keeps what the results page needs of finished runs in the repository, so that a later session on a fresh
machine (no runs/) still has them, and a grid resumed there skips them:

    python docs/keep_runs.py 'runs/seed-experiment-3k-*'            # into docs/results/grid/<run>/
    cp -r docs/results/grid/seed-experiment-3k-* runs/              # on a fresh machine, before the sweep
    python docs/keep_runs.py --step0 'RERUNS/*/embeddings/step-00000000'   # step 0 of kept runs, from reruns

Per run: summary.json, config.yaml, metrics.csv (and its resumptions'), the final translations and references,
trajectory.json (the geometry of every snapshot against its nulls; computed here from the dumps if the
run has none), similarity-final.json (the last snapshot's similarity report, trimmed) and similarity-step0.json
(the same of the step-0 snapshot: the initialisation null of what only a report has, such as SimLex-999). The
dumps and checkpoints stay out of git.

``--step0`` adds the step-0 report to runs kept without one, from the step-0 snapshot of the same grid point
trained again (a few minutes: the fit can be stopped once its step-0 report is written). Initialisation is
deterministic, so the snapshot must be the kept run's own step 0: it is taken only when its statistics equal
those the kept run's trajectory.json records for step 0, exactly.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import shutil
from pathlib import Path

from tiedtransformer.analysis import schema
from tiedtransformer.analysis.dumps import EmbeddingDump, read_dump
from tiedtransformer.analysis.options import AnalysisOptions
from tiedtransformer.analysis.report import analyze_to_dir
from tiedtransformer.analysis.trajectory import nulls, run_trajectory
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
    return trimmed(report)


def trimmed(report: schema.DumpAnalysis) -> schema.DumpAnalysis:
    """What the page reads of a report: the first top pairs, no bottom pairs or histograms."""
    for m in report.matrices.values():
        m.top_pairs, m.bottom_pairs, m.histogram = m.top_pairs[:SHOWN_PAIRS], m.bottom_pairs[:10], None
    return report


def step0_similarity(dump_dir: Path) -> schema.DumpAnalysis:
    """The step-0 snapshot's similarity report (analysed here if the snapshot has none), trimmed."""
    path = DumpDir(dump_dir).similarity
    if path.is_file():
        report = schema.DumpAnalysis.from_json(json.loads(path.read_text()))
    else:
        report, _ = analyze_to_dir(read_dump(dump_dir), dump_dir, AnalysisOptions(), None, None)
    return trimmed(report)


def keep(run: RunDir, into: Path, again: bool = False) -> list[Path]:
    if not run.trajectory.is_file():
        run_trajectory(run.path)
    out = into / run.name
    copied = []
    if (report := final_similarity(run, again)) is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / run.final_similarity.name, report.to_json())
        copied.append(out / run.final_similarity.name)
    if run.snapshot(0).is_dir():
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / run.init_similarity.name, step0_similarity(run.snapshot(0)).to_json())
        copied.append(out / run.init_similarity.name)
    lang = (run.read_summary() or FitSummary()).target_lang
    files = [run.summary, run.config, run.trajectory, *run.metrics_files()]
    files += [run.final_translations(lang, stage) for stage in ("val", "test")] + [run.final_references(lang, "test")]
    for f in files:
        if f.is_file():
            target = out / f.relative_to(run.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            copied.append(Path(shutil.copy2(f, target)))
    return copied


def step0_mismatch(dump_dir: Path, dump: EmbeddingDump, kept: RunDir) -> str | None:
    """Why a step-0 snapshot (``dump``, read from ``dump_dir``) is not the kept run's own (None if it is):
    another grid point (tying, direction, seed), or statistics that differ from those in the kept run's
    trajectory.json at all."""
    summary, meta = kept.read_summary() or FitSummary(), dump.meta
    point = (meta.get("tying"), meta.get("direction"), meta.get("seed"), meta.get("step"))
    if point != (summary.tying, summary.direction, summary.seed, 0):
        return f"{dump_dir} is {point} (tying, direction, seed, step), {kept.name} is {summary.tying, summary.direction, summary.seed, 0}"
    if not kept.trajectory.is_file():
        return f"{kept.trajectory} is missing: nothing to check the snapshot against"
    recorded = json.loads(kept.trajectory.read_text())
    mine = nulls(dump, recorded["min_count"])
    for name, stats in recorded["nulls"].items():
        for key, value in stats["init"].items():
            if not _same(value, (mine.get(name) or {}).get("init", {}).get(key)):
                return f"{dump_dir}: {name} {key} is {mine.get(name, {}).get('init', {}).get(key)} at step 0, {kept.name} recorded {value}"
    return None


def _same(a, b) -> bool:
    """Equal, where an undefined statistic (NaN) equals another NaN."""
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


def keep_step0(dump_dirs: list[Path], into: Path) -> list[Path]:
    """Each step-0 snapshot's report into the kept run of its grid point, when the snapshot is that run's own
    step 0 (:func:`step0_mismatch`); the others are named with the reason, and nothing is written for them."""
    by_point = {}  # (tying, direction, seed) -> the kept run of that grid point
    for p in sorted(into.iterdir()) if into.is_dir() else []:
        if (s := RunDir(p).read_summary()) is not None:
            by_point.setdefault((s.tying, s.direction, s.seed), RunDir(p))
    written = []
    for d in dump_dirs:
        dump = read_dump(d)
        point = (dump.meta.get("tying"), dump.meta.get("direction"), dump.meta.get("seed"))
        if (kept := by_point.get(point)) is None:
            print(f"{d}: no kept run of {point} (tying, direction, seed) in {into}")
            continue
        if why := step0_mismatch(d, dump, kept):
            print(f"not taken: {why}")
            continue
        atomic_write_json(kept.init_similarity, step0_similarity(d).to_json())
        print(f"{kept.name}: {kept.init_similarity.name} from {d}")
        written.append(kept.init_similarity)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="?", help="a glob of run directories; unfinished runs are left out")
    ap.add_argument("--into", default=str(KEPT))
    ap.add_argument("--again", action="store_true", help="analyse each run's last snapshot again with this code")
    ap.add_argument("--step0", help="a glob of step-0 snapshots of grid points trained again (see above)")
    args = ap.parse_args()
    if not args.runs and not args.step0:
        ap.error("give a glob of run directories, or --step0 with a glob of step-0 snapshots")
    if args.step0:
        keep_step0([Path(p) for p in sorted(glob.glob(args.step0))], Path(args.into))
    for d in sorted(glob.glob(args.runs or "")):
        run = RunDir(d)
        if run.finished():
            print(f"{run.name}: {len(keep(run, Path(args.into), args.again))} files")


if __name__ == "__main__":
    main()
