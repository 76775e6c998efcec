"""Rewrites docs/results.md (and docs/results/) from the seed experiment's grid.

    tiedtransformer sweep sweeps/seed_experiment.yaml --local        # the grid: runs/seed-experiment-3k-*
    python docs/keep_runs.py 'runs/seed-experiment-3k-*'             # what the page needs -> docs/results/grid/
    python docs/make_results.py --dumps 'runs/seed-experiment-3k-*'  # also the runs compared over training (dumps)
    python docs/make_results.py --dumps 'RERUNS/seed-experiment-3k-*'  # or grid points trained again, equal to them
    python docs/intrinsic_null.py                                    # random nulls of SimLex/WordSim (needs the data)
    python docs/make_results.py                                      # the page from the committed files alone
    python -m benchmarks.tying --size recipe --norm_first --dropout 0.1 --rounds 9 --steps 10 \\
        | grep '^{' > docs/results/tying-speed.jsonl                 # speed of each mode (an idle machine)

Every number and every description on the page is read from the kept runs (their config.yaml, summary.json,
metrics, final translations, trajectory.json, similarity-final.json), from docs/results/cross_trajectory.json
(written with --dumps: CKA, Procrustes, Jaccard, k-NN and Spearman between a tied run's decoder matrix and an
untied run's, at every snapshot; the pairs of the runs the glob matches are recomputed, the file's other pairs
kept) and from docs/results/tying-speed.jsonl; every verdict comes from one rule
(tiedtransformer.analysis.verdict, through tiedtransformer.analysis.findings). The README's summary between
its `results:begin`/`results:end` markers is rewritten from the same verdicts.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from statistics import mean, stdev

import yaml

from tiedtransformer.analysis.compare import load_run, significance, write_pages
from tiedtransformer.analysis.dumps import MATRIX_NAMES
from tiedtransformer.analysis.figures import jaccard_heatmap, over_training
from tiedtransformer.analysis.model_findings import ACROSS_MEASURES, seed_findings
from tiedtransformer.analysis.seed_tables import GEOMETRY, geometry_rows, groups, pair_rows
from tiedtransformer.analysis.trajectory import cross_trajectory, learned_minus_null
from tiedtransformer.analysis.verdict import NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED
from tiedtransformer.run.files import RunDir
from tiedtransformer.run.summary import FitSummary

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
OUT = DOCS / "results"
KEPT = OUT / "grid"
CROSS_FILE = OUT / "cross_trajectory.json"
SPEED_FILE = OUT / "tying-speed.jsonl"
NULL_FILE = OUT / "intrinsic_null.json"  # docs/intrinsic_null.py: random nulls of runs analysed without them
FIGURES = OUT / "figures"
# what differs between the grid's runs; everything else in their configs must agree
VARIED = {("seed_everything",), ("data", "direction"), ("model", "net", "tying")}
LABEL = {REPRODUCED: "**reproduced**", NOT_REPRODUCED: "**not reproduced**", NOT_TESTABLE: "**not testable**"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default=str(KEPT / "seed-experiment-3k-*"), help="kept runs (docs/keep_runs.py)")
    ap.add_argument(
        "--dumps",
        help="the same runs with their embedding dumps (or grid points trained again, named as the grid's runs, "
        "whose training equals the kept run's): recompute the cross-run trajectories of their pairs",
    )
    args = ap.parse_args()
    dirs = sorted(p for p in glob.glob(args.runs) if RunDir(p).summary.is_file())
    if not dirs:
        sys.exit(f"no finished runs match {args.runs!r}: run the grid and docs/keep_runs.py first (see the docstring)")
    runs = [load_run(d) for d in dirs]
    add_intrinsic_nulls(runs, json.loads(NULL_FILE.read_text()) if NULL_FILE.is_file() else {})
    if args.dumps:
        full = [load_run(p) for p in sorted(glob.glob(args.dumps)) if RunDir(p).summary.is_file()]
        kept = {r["name"]: r for r in runs}
        if bad := [f"{r['dir']}: {why}" for r in full if (why := differs_from_kept(r, kept.get(r["name"])))]:
            sys.exit("not the kept runs' training, so their dumps are not the runs' own:\n  " + "\n  ".join(bad))
        OUT.mkdir(parents=True, exist_ok=True)
        old = json.loads(CROSS_FILE.read_text()) if CROSS_FILE.is_file() else []
        CROSS_FILE.write_text(json.dumps(merged_cross(old, collect_cross(full)), indent=1) + "\n")
    cross, stale = cross_coverage(runs, json.loads(CROSS_FILE.read_text()) if CROSS_FILE.is_file() else [])
    if stale:
        print(f"warning: {stale}", file=sys.stderr)
    speed = [json.loads(x) for x in SPEED_FILE.read_text().splitlines() if x.strip()] if SPEED_FILE.is_file() else []
    _, rows, tables = write_pages(runs, OUT / "compare.html")
    p_values = {name: t.get("bleu_p") for name, t in significance(runs).items()}
    found = seed_findings(runs, p_values, cross)
    shutil.rmtree(FIGURES, ignore_errors=True)
    FIGURES.mkdir(parents=True)

    lines = header(runs, speed) + ([f"- **Cross-run comparisons incomplete**: {stale}."] if stale else [])
    lines += ["", "## What was found", ""] + [f"- {x}" for x in summary_lines(found)]
    lines += ["", "## Cost of tying: BLEU, chrF, parameters, speed", ""] + cost_section(runs, rows, speed)
    lines += ["", "## The findings, each by the rule", ""] + rule_text() + [""] + findings_text(found)
    lines += ["", "## Statistics that tell learning from initialisation", ""] + geometry_section(runs)
    lines += ["", "## Over training", ""] + over_training_section(runs, cross)
    lines += across_runs_table(
        cross, {run["name"] for run, again in kept_reruns(runs) if not differs_from_kept(again, run)}
    )
    lines += rerun_section(runs)
    lines += ["", "## The seed's tables", ""]
    for t in tables:
        lines += [f"### {t['title']}", "", t["note"], "", md(t["header"], t["rows"]), ""]
    lines += [
        "## Files",
        "",
        "- `results/grid/<run>/`: each run's config.yaml, summary.json, metrics, final translations, trajectory.json "
        "(its matrices' statistics at every snapshot with their nulls), similarity-final.json and, where a rerun "
        "supplied it (`docs/keep_runs.py --step0`), similarity-step0.json (the step-0 report: finding 5's "
        "initialisation null).",
        "- `results/cross_trajectory.json`: between a tied run's decoder matrix and an untied run's, over training: "
        "CKA of every pair (from the grid's dumps), every measure of the pairs whose runs were trained again with "
        "their dumps; `results/rerun/<run>/`: grid points trained again from their committed config.yaml, kept as "
        "the grid's runs are (`results/rerun-padded/<run>/`: the same, while the loss padded fp32 rows); `results/tying-speed.jsonl`: the speed benchmark; `results/compare.html` (`.md`, "
        "`.csv`): `tiedtransformer compare` of the same runs.",
    ]
    text = "\n".join(lines) + "\n"
    (DOCS / "results.md").write_text(text, encoding="utf-8")
    write_readme_summary(summary_lines(found))
    print(text)


RERUNS = OUT / "rerun"  # kept copies of grid points trained again from their committed config.yaml
# the same, trained again while the fused loss padded fp32 rows (7de14f9, before b574b6d): what the padding did
RERUNS_PADDED = OUT / "rerun-padded"


def add_intrinsic_nulls(runs: list[dict], nulls: dict) -> None:
    """The random null of each run's intrinsic scores from ``nulls`` (run -> matrix -> scores) where its own
    analysis has none."""
    for r in runs:
        intrinsic = (r["similarity"].intrinsic if r["similarity"] else None) or {}
        for name, scores in nulls.get(r["name"], {}).items():
            if isinstance(intrinsic.get(name), dict):
                intrinsic[name].setdefault("random", scores)


def logged_losses(run_dir: Path) -> tuple[dict[int, float], list[int]]:
    """The training loss at every logged step of a run (its metrics, across resumed parts), and the steps that
    two parts log with different losses (a resumed part that did not retrace the run: its later value is kept)."""
    out, conflicts = {}, []
    for f in RunDir(run_dir).metrics_files():
        with f.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("train/loss") and row.get("step"):
                    step, loss = int(row["step"]), float(row["train/loss"])
                    if step in out and out[step] != loss:
                        conflicts.append(step)
                    out[step] = loss
    return out, conflicts


def differs_from_kept(again: dict, kept: dict | None) -> str | None:
    """Why a run trained again (with its dumps) is not the kept run of its name: no such kept run, or another
    training (its logged steps, its loss at one of them, its final validation loss or BLEU, or its last step
    differ, or one of them logs a step twice with two losses); None when it is the same training. Not the
    tokens trained on: the grid's resumed run (e1492eda) counted those of its last part only."""
    if kept is None:
        return "no kept run of this name (docs/keep_runs.py keeps it first)"
    (a, a_conflicts), (b, b_conflicts) = logged_losses(kept["dir"]), logged_losses(again["dir"])
    if a_conflicts or b_conflicts:
        return f"a step logged twice with two losses: {(a_conflicts or b_conflicts)[0]} ({'kept' if a_conflicts else 'here'})"
    if not a:
        return "no logged training loss to compare"
    if a.keys() != b.keys():
        return f"logged steps differ: {len(a.keys() - b.keys())} only in the kept run, {len(b.keys() - a.keys())} only here"
    if (step := next((k for k in sorted(a) if a[k] != b[k]), None)) is not None:
        return f"training loss at step {step}: {a[step]!r} kept, {b[step]!r} here"
    for key in ("final_val_loss", "final_val_bleu", "global_step"):
        if getattr(kept["summary"], key) != getattr(again["summary"], key):
            return f"{key}: {getattr(kept['summary'], key)!r} kept, {getattr(again['summary'], key)!r} here"
    return None


def kept_reruns(runs: list[dict], where: Path | None = None) -> list[tuple[dict, dict]]:
    """The grid points trained again and kept in ``where`` (``RERUNS``; a directory per rerun, named by its grid
    point's hash at the end), each as (kept run, rerun ``{"dir", "name", "summary"}``), in the order of the
    hashes."""
    by_hash = {r["name"].rsplit("-", 1)[-1]: r for r in runs}
    out = []
    for d in sorted((where or RERUNS).glob("*"), key=lambda p: (p.name.rsplit("-", 1)[-1], p.name)):
        run = by_hash.get(d.name.rsplit("-", 1)[-1])
        if run is not None and RunDir(d).summary.is_file():
            out.append((run, {"dir": d, "name": d.name, "summary": RunDir(d).read_summary() or FitSummary()}))
    return out


def short_commit(commit: str) -> str:
    """A recorded commit (``code_commit``) as people read it: 7 hex digits, ``+`` kept (tracked files differed)."""
    return commit[:7] + ("+" if commit.endswith("+") else "")


def rerun_section(runs: list[dict]) -> list[str]:
    """Grid points trained again from their committed config (``fit -c docs/results/grid/X/config.yaml``), kept
    by ``python docs/keep_runs.py 'RERUN_ROOT/*' --into docs/results/rerun`` (and those of ``RERUNS_PADDED``):
    each one's BLEU and logged training losses against the run's, and whether it is the same training."""
    out = rerun_lines(runs, RERUNS)
    if padded := rerun_lines(runs, RERUNS_PADDED):
        out += [
            "",
            f"Trained again while the fused loss padded the rows of fp32 batches too (`{RERUNS_PADDED.name}/`: at "
            "commit 7de14f9, between the padding of b7dc0fe and b574b6d, which pads under autocast only; their "
            "summaries predate the recorded commit). The padding changed the rounding of some batches "
            "(`python -m benchmarks.loss_rounding`); from the first step that differs the run is another "
            "training:",
            "",
            *padded,
        ]
    return ["", "## Grid points trained again", ""] + out if out else []


def rerun_lines(runs: list[dict], where: Path) -> list[str]:
    """One line per rerun kept in ``where``: its BLEU and logged training losses against the run's, and whether
    it is the same training (:func:`differs_from_kept`)."""
    out = []
    for run, again in kept_reruns(runs, where):
        first, second = run["summary"], again["summary"]
        cells, pairs = [], [(k, getattr(first, k), getattr(second, k)) for k in ("final_val_bleu", "final_test_bleu")]
        for key, a, b in pairs:
            if a is not None and b is not None:
                cells.append(f"{key.split('_')[1]} BLEU {a:.2f} then {b:.2f} (difference {b - a:+.2f})")
        within = all(abs(b - a) <= 0.3 for _, a, b in pairs if a is not None and b is not None)
        (losses, _), (kept, _) = logged_losses(again["dir"]), logged_losses(run["dir"])
        steps = losses.keys() | kept.keys()
        same = sum(k in losses and k in kept and losses[k] == kept[k] for k in steps)
        code = f"code at commit {short_commit(second.commit)}" if second.commit else "code's commit not recorded"
        why = differs_from_kept(again, run)
        out.append(
            f"- {run.get('label') or run['name']} (`{run['name']}`) trained again from its committed `config.yaml` "
            f"(`{where.name}/{again['name']}`, {code}): "
            + "; ".join(cells)
            + f"; training loss equal to the last bit at {same} of {len(steps)} logged steps"
            + f"; the same training: {'yes' if why is None else 'no (' + why + ')'}"
            + f". Within 0.3 BLEU: {'yes' if within else 'no'}."
        )
    return out


def cross_pairs(runs: list[dict]) -> list[tuple[dict, dict]]:
    """Every tied run (decoder, three_way) with every untied run of the same direction and another seed (runs of
    one seed share their random start, which explains any resemblance)."""
    g = groups(runs)
    return [
        (a, b)
        for (direction, tying), members in g.items()
        if tying in ("decoder", "three_way")
        for a in members
        for b in g.get((direction, "none"), [])
        if a["seed"] != b["seed"]
    ]


def collect_cross(runs: list[dict]) -> list[dict]:
    """Press & Wolf as dynamics: a tied run's decoder matrix against an untied run's dec_lut and dec_embed, at
    every step both have a snapshot of."""
    out = []
    for a, b in cross_pairs(runs):
        direction, tying = a["summary"].direction, a["summary"].tying
        print(f"cross: {direction} {tying} seed {a['seed']} vs none seed {b['seed']}", flush=True)
        steps = cross_trajectory(a["dir"], "dec_lut", b["dir"], ("dec_lut", "dec_embed"))
        out.append(
            {
                "direction": direction,
                "tying": tying,
                "seed_a": a["seed"],
                "seed_b": b["seed"],
                "run_a": a["name"],
                "run_b": b["name"],
                "steps": steps,
            }
        )
    return out


def merged_cross(old: list[dict], new: list[dict]) -> list[dict]:
    """The cross-run entries of ``new`` in place of ``old``'s for the same pair of runs, ``old``'s other pairs
    kept (a rerun of some grid points with dumps recomputes their pairs only), in a stable order."""
    fresh = {(c["run_a"], c["run_b"]) for c in new}
    kept = [c for c in old if (c["run_a"], c["run_b"]) not in fresh] + new
    return sorted(kept, key=lambda c: (c["direction"], c["tying"], c["seed_a"], c["seed_b"], c["run_a"], c["run_b"]))


ACROSS = {m: a.label for m, a in ACROSS_MEASURES.items()}  # measure of cross_trajectory: its column


def across_runs_table(cross: list[dict], same: set[str]) -> list[str]:
    """A tied run's decoder matrix against an untied run of another seed, at the last step and at step 0, every
    measure beside its chance level: the pairs of ``cross`` that have every measure (their runs' dumps were
    recomputed with this code; findings 4b-4e judge them). ``same``: the runs whose kept rerun is the same
    training (:func:`differs_from_kept`), which the text counts."""
    rows, names = [], set()
    for c in cross:
        first, last = c["steps"][0], c["steps"][-1]
        if first["step"] != 0 or any(m not in last.get("dec_lut", {}) for m in ACROSS):
            continue
        names |= {c["run_a"], c["run_b"]}
        for target in ("dec_lut", "dec_embed"):
            cells = [
                f"{last[target][m]:.3f} / {first[target][m]:.3f} / {last[target][f'{m}_chance']:.3f}" for m in ACROSS
            ]
            rows.append([c["direction"], c["tying"], f"{c['seed_a']} vs {c['seed_b']}", target, *cells])
    if not rows:
        return []
    return [
        "",
        "### Across runs: every measure",
        "",
        "A tied run's decoder matrix against an untied run of another seed, by token text, each measure at the last "
        "step / at step 0 / its chance level at the last step (CKA and Procrustes: the second matrix's rows shuffled; "
        "Jaccard: two random top-K sets; Spearman: 0). Every pair whose runs' dumps exist is listed; findings 4b-4e "
        "take each run in one pair only. The grid's dumps are not kept: the dumps came from its runs trained again "
        f"from their committed config.yaml (`--dumps` takes only a rerun that is the same training); of the "
        f"{len(names)} runs in these pairs, {len(names & same)} have a kept rerun that is the same training as the "
        "grid's run (*Grid points trained again*).",
        "",
        md(["direction", "tied run", "seeds", "against", *ACROSS.values()], rows),
    ]


def cross_coverage(runs: list[dict], cross: list[dict]) -> tuple[list[dict], str | None]:
    """The cross-run trajectories of the kept runs' pairs, and a note when some pairs have none (the file was
    made from fewer runs: rerun with --dumps) or the file holds runs that are not kept."""
    names = {r["name"] for r in runs}
    kept = [c for c in cross if c["run_a"] in names and c["run_b"] in names]
    want = {(a["name"], b["name"]) for a, b in cross_pairs(runs)}
    missing = want - {(c["run_a"], c["run_b"]) for c in kept}
    if not missing and len(kept) == len(cross):
        return kept, None
    return kept, (
        f"{CROSS_FILE.name} covers {len(want) - len(missing)} of the {len(want)} pairs of these runs"
        + (f" and holds {len(cross) - len(kept)} of runs not kept" if len(kept) != len(cross) else "")
        + ": `python docs/make_results.py --dumps 'runs/seed-experiment-3k-*'` recomputes it"
    )


def _get(d: dict, path: tuple):
    for k in path:
        d = (d or {}).get(k)
    return d


def _flat(d: dict, prefix=()) -> dict[tuple, object]:
    out = {}
    for k, v in d.items():
        out |= _flat(v, (*prefix, k)) if isinstance(v, dict) else {(*prefix, k): v}
    return out


def header(runs: list[dict], speed: list[dict]) -> list[str]:
    """Budget, data, model, machine and commands, read from the runs' own config.yaml and summary.json."""
    configs = [yaml.safe_load(RunDir(r["dir"]).config.read_text()) for r in runs]
    flats = [_flat(c) for c in configs]
    differ = sorted(
        ".".join(map(str, k))
        for k in set().union(*flats)
        if k not in VARIED and k[0] not in ("run",) and len({json.dumps(f.get(k), default=str) for f in flats}) > 1
    )
    c = configs[0]
    net, optim, data, trainer = c["model"]["net"], c["model"]["optim"], c["data"], c["trainer"]
    steps = sorted({r["summary"].global_step for r in runs})
    s0 = runs[0]["summary"]
    g = groups(runs)
    counts = ", ".join(f"{d} {t}: {len(ms)}" for (d, t), ms in g.items())
    machine = speed[0].get("machine") if speed else None
    trained_on = Counter((m.get("cpu"), m.get("cores")) for r in runs if isinstance(m := r["summary"].machine, dict))
    trained_on = [({"cpu": c, "cores": k}, n) for (c, k), n in trained_on.items()]
    lines = [
        "# The seed experiment at a trained budget: results",
        "",
        f"{len(runs)} runs of `tiedtransformer sweep sweeps/seed_experiment.yaml --local` (tying × direction × seed; "
        f"runs per group: {counts}), kept by `python docs/keep_runs.py` and written into this page by "
        "`python docs/make_results.py` (its docstring has every command). Nothing on this page is typed in: the "
        "descriptions below are read from the runs' `config.yaml` and `summary.json`.",
        "",
        f"- **Budget**: {', '.join(str(s) for s in steps)} optimizer steps per run, batches of up to "
        f"{data['max_tokens']:,} tokens, lr {optim['lr']} ({optim['warmup_steps']} warm-up steps, then "
        f"{optim['schedule']} decay to {optim['final_lr_factor']} × lr), AdamW β {tuple(optim['betas'])}, label "
        f"smoothing {optim['label_smoothing']}, gradient clipping {trainer['gradient_clip_val']}, precision "
        f"`{trainer['precision']}`.",
        f"- **Model**: d {net['d_model']}, {net['n_encoder_layers']}+{net['n_decoder_layers']} layers, "
        f"{net['n_heads']} heads, FFN {net['d_ff']}, dropout {net['dropout']}, "
        f"{'pre' if net['norm_first'] else 'post'}-norm; one joint SentencePiece vocabulary of "
        f"{s0.vocab_size or data['vocab_size']} for every mode.",
        f"- **Data**: `{data['train_path']}` (source `{data['source']}`), the last {data['test_holdout']:,} pairs of its "
        f"training file held out as the test set, validation `{data['valid_path']}`; final evaluation: "
        f"{s0.final_search}, on all {s0.final_val_sentences} validation and "
        f"{s0.final_test_sentences} test sentences.",
        "- **Machine** of the speed benchmark: "
        + (f"{machine.get('cpu')}, {machine.get('cores')} cores." if machine else "none recorded.")
        + " Of the runs: "
        + (
            "; ".join(f"{m.get('cpu')}, {m.get('cores')} cores ({n} runs)" for m, n in trained_on)
            if trained_on
            else "not recorded (these runs' summary.json has no `machine`)"
        )
        + "; their own tokens/s are not used for speed.",
        f"- **What differs from the seed**: `{data['train_path']}` instead of WMT EN-DE (4.5M pairs); "
        f"a {s0.vocab_size or data['vocab_size']} instead of a 37,000 vocabulary; d {net['d_model']} and "
        f"{net['n_encoder_layers']}+{net['n_decoder_layers']} layers instead of Transformer base (512, 6+6); "
        f"{', '.join(str(s) for s in steps)} steps instead of 12 epochs of WMT.",
    ]
    if differ:
        lines.append(f"- **Configs differ beyond the grid's parameters** in: {', '.join(differ)}.")
    missing = [f"{d} {t} (seeds {sorted(r['seed'] for r in ms)})" for (d, t), ms in g.items() if len(ms) < 3]
    if missing:
        lines.append(
            f"- **Incomplete grid**: fewer than 3 seeds in {', '.join(missing)}. A finding with one seed has no "
            "spread and is *not testable*."
        )
    return lines


def md(h: list[str], rows: list[list]) -> str:
    from tiedtransformer.analysis.compare import _md

    return _md(h, rows).rstrip("\n")


def _ms(xs: list[float], d: int = 2) -> str:
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    return f"{mean(xs):.{d}f}" + (f" ± {stdev(xs):.{d}f}" if len(xs) > 1 else "")


def cost_section(runs: list[dict], rows: list[dict], speed: list[dict]) -> list[str]:
    by_name = {r["directory"]: r for r in rows}
    ratios = {
        s["benchmark"].removeprefix("tying_recipe_"): s for s in speed if s["benchmark"].startswith("tying_recipe_")
    }
    g = groups(runs)
    table = []
    for (direction, tying), members in g.items():
        base = g.get((direction, "none"), [])
        params = members[0]["summary"].unique_params
        base_params = base[0]["summary"].unique_params if base else None
        per_seed = []
        for r in sorted(members, key=lambda r: r["seed"]):
            row = by_name[r["name"]]
            bleu = row["test_bleu"]
            p = row["test_bleu_p"]
            chrf = row["test_chrf"]
            per_seed.append(
                f"s{r['seed']}: {bleu[0]:.2f} ± {bleu[1]:.2f}"
                + (f" / {chrf[0]:.2f} ± {chrf[1]:.2f}" if chrf and chrf[1] is not None else "")
                + (f" (p {p:.3f})" if p is not None else "")
                if bleu
                else f"s{r['seed']}: –"
            )
        sp = ratios.get(tying)
        table.append(
            [
                direction,
                tying,
                len(members),
                f"{params / 1e6:.2f}M" if params else "–",
                f"{100 * (params - base_params) / base_params:+.1f}%" if params and base_params else "–",
                _ms([r["summary"].final_val_bleu for r in members]),
                _ms([r["summary"].final_test_bleu for r in members]),
                _ms([r["summary"].final_test_chrf for r in members]),
                "; ".join(per_seed),
                f"{sp['ratio']:.3f} [{sp['ratio_range'][0]:.3f}, {sp['ratio_range'][1]:.3f}]"
                if sp and "ratio_range" in sp and tying != "none"
                else ("1 (the reference)" if tying == "none" and sp else "–"),
            ]
        )
    out = [
        f"BLEU and chrF: final evaluation ({runs[0]['summary'].final_search}), mean ± sample standard deviation "
        "over seeds; per seed, test BLEU "
        "± its 95% bootstrap half-interval and the paired-bootstrap p (sacreBLEU) against the untied run of the same "
        "direction and seed. Speed: training steps per second against the untied network, timed interleaved on one "
        "batch of the same model (`python -m benchmarks.tying --size recipe --norm_first --dropout 0.1`): median "
        "over rounds of the per-round ratio, [lowest, highest round]; one benchmark for both directions (the network is "
        "the same shape).",
        "",
        md(
            [
                "direction",
                "tying",
                "seeds",
                "parameters",
                "Δ parameters",
                "val BLEU",
                "test BLEU",
                "test chrF",
                "test BLEU / chrF per seed, ± 95% (p of BLEU vs untied)",
                "speed vs untied [rounds]",
            ],
            table,
        ),
    ]
    if speed:
        inside = [
            t
            for t, s in ratios.items()
            if t != "none" and "ratio_range" in s and s["ratio_range"][0] <= 1.0 <= s["ratio_range"][1]
        ]
        out += [
            "",
            f"Speed: {', '.join(f'`{t}`' for t in inside) or 'no mode'} "
            + ("lies" if len(inside) == 1 else "lie")
            + " within the range of rounds around 1.0: a difference of speed is *not detectable here*"
            + (
                ""
                if len(inside) == len(ratios) - 1
                else f"; outside it: {', '.join(f'`{t}`' for t in ratios if t not in inside and t != 'none')}"
            )
            + ".",
        ]
    return out


def rule_text() -> list[str]:
    return [
        "A finding states what the source reported, then what is measured here and against which nulls, then the "
        "threshold, then the numbers. The rule (`tiedtransformer/analysis/verdict.py`, tested in "
        "`tests/test_verdict.py`): *reproduced* only when the learned statistic differs from every null by more "
        "than the seed-to-seed spread (the largest sample standard deviation over seeds of the statistic and of its "
        "nulls), in the direction the source reported; *not reproduced* when it differs from a null by more than "
        "the spread the other way; *not testable* otherwise, and always with a single seed (no spread). The "
        "threshold is never below the statistic's resolution (one pair of a top-K set, for a Jaccard or a share of "
        "pair kinds), so that seeds agreeing to the last digit do not make any difference count. A unit is a seed (a "
        "run), or for comparisons across runs a pair of runs in which each run appears once.",
    ]


def findings_text(found) -> list[str]:
    out = []
    for f in found:
        out.append(
            f"- **{f.key}** — *{f.claim}.* Measured: {f.measure}. {f.result.describe().rsplit(';', 1)[0]}. "
            f"Numbers: {f.detail}. → {LABEL[f.result.outcome]}"
        )
    return out


def summary_lines(found) -> list[str]:
    """Five lines from the verdicts alone (each line names its findings)."""
    by = {}
    for f in found:
        by.setdefault(f.key.split("-")[0], []).append(f)

    def say(keys: list[str]) -> str:
        """Each verdict with the findings that got it (finding-direction[-matrix])."""
        fs = [f for k in keys for f in by.get(k, [])]
        parts = []
        for outcome in LABEL:
            named = [f.key for f in fs if f.result.outcome == outcome]
            if named:
                parts.append(f"{outcome} ({', '.join(named)})")
        return "; ".join(parts) or "no finished runs"

    def gaps(key: str) -> str:
        """Each direction's learned-minus-null difference of a finding, with its threshold."""
        fs = [f for f in by.get(key, []) if f.result.threshold is not None]
        return ", ".join(
            f"{f.key.split('-', 1)[1]} {next(iter(f.result.gaps.values())):+.2f} (threshold {f.result.threshold:.2f})"
            for f in fs
        )

    more = [a.key for a in ACROSS_MEASURES.values() if a.key != "4"]
    outcome = {f.key: f.result.outcome for f in found}
    split = sorted(  # directions where CKA's verdict is not every other measure's
        key.split("-", 1)[1]
        for key in outcome
        if key.startswith("4-")
        and any(outcome.get(f"{m}-{key.split('-', 1)[1]}", outcome[key]) != outcome[key] for m in more)
    )
    return [
        f"Structure learned by the untied matrices (finding 0, top-pair cosines against step 0 and random): {say(['0'])}.",
        f"The seed's overlaps of top pairs and `dec_lut`'s bottom similarities (1a-1c): {say(['1a', '1b', '1c'])}.",
        f"`enc_lut` highest, as the lead training added beyond step 0 (2a), and the kinds of top pairs (2b-2d): {say(['2a', '2b', '2c', '2d'])}.",
        f"Three-way tying against untied, same seeds, test BLEU difference: {gaps('3') or 'none measured'}; "
        f"a cost (3, the seed's ~1.5) and a gain (6): {say(['3', '6'])}.",
        "Press & Wolf: the decoder-tied matrix resembles an untied run's output embedding more than its input "
        f"embedding, at the last step against step 0 and chance, by CKA (4): {say(['4'])}; by the Procrustes "
        "residual, top pairs, neighbours and cosines (4b-4e: the same pairs of runs seen otherwise, not "
        f"replications): {say(more) if any(k in by for k in more) else 'not measured'}"
        + (f" (CKA and the other measures disagree: {', '.join(split)})" if split else "")
        + "; "
        f"the output embedding scores better on SimLex-999 (5): {say(['5'])}.",
    ]


def write_readme_summary(lines: list[str]) -> None:
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    block = (
        "<!-- results:begin (written by docs/make_results.py) -->\n"
        + "".join(f"- {x}\n" for x in lines)
        + "<!-- results:end -->"
    )
    if "<!-- results:begin" in text:
        text = re.sub(r"<!-- results:begin.*?<!-- results:end -->", lambda _: block, text, flags=re.S)
        readme.write_text(text, encoding="utf-8")


def geometry_section(runs: list[dict]) -> list[str]:
    rows = geometry_rows(runs)
    out = [
        "At the last snapshot, each matrix's statistic (mean over seeds) with its nulls: step 0 / a random matrix of "
        "the same shape and row norms. ✓: differs from both by more than the spread across seeds (the rule, in the "
        "direction of the difference); ·: does not (or one seed). A tied matrix is measured over the rows of its side's tokens (`enc_embed` over the source language's, `dec_embed` and `dec_lut` over the target's), so one shared matrix can read differently as `enc_embed` and as `dec_embed`; the similarity tables above count a tied matrix once, over the tokens of the first matrix it is.",
        "",
    ]
    cells = {}
    for r in rows:
        mark = "✓" if r["verdict"].outcome == REPRODUCED else "·"
        cells.setdefault((r["direction"], r["tying"], r["matrix"]), {})[r["statistic"]] = (
            f"{mean(r['learned']):.3f} ({mean(r['init']):.3f} / {mean(r['random']):.3f}) {mark}"
        )
    table = [[d, t, m, *(c.get(k, "–") for k in GEOMETRY)] for (d, t, m), c in cells.items()]
    out.append(md(["direction", "tying", "matrix", *(GEOMETRY[k] for k in GEOMETRY)], table))
    prs = [r for r in pair_rows(runs) if r["tying"] == "none"]
    if prs:
        out += [
            "",
            "Between the four matrices of an untied run (same tokens, rows matched): linear CKA and the orthogonal "
            "Procrustes residual (of row-normalised, centred matrices; 0 = a rotation of each other), at the last "
            "snapshot and at step 0, with their chance levels (the second matrix's rows shuffled).",
            "",
            md(
                ["direction", "pair", "CKA", "CKA at step 0", "CKA chance", "Procrustes", "at step 0", "chance"],
                [
                    [
                        r["direction"],
                        r["pair"].replace("|", " ~ "),
                        _ms(r["cka"], 3),
                        _ms(r["cka_step0"], 3),
                        _ms(r["cka_chance"], 3),
                        _ms(r["procrustes"], 3),
                        _ms(r["procrustes_step0"], 3),
                        _ms(r["procrustes_chance"], 3),
                    ]
                    for r in prs
                ],
            ),
        ]
    heatmaps = []
    for direction in sorted({r["direction"] for r in prs}):
        table = {a: {b: 1.0 if a == b else None for b in MATRIX_NAMES} for a in MATRIX_NAMES}
        for r in prs:
            if r["direction"] == direction and r["cka"]:
                a, b = r["pair"].split("|")
                table[a][b] = table[b][a] = mean(r["cka"])
        path = jaccard_heatmap(table, FIGURES / f"cka-{direction}-none.png", f"linear CKA, untied {direction}")
        heatmaps.append(_png(path))
    if heatmaps:
        out += ["", "Linear CKA between the matrices of untied runs (mean over seeds):", "", " ".join(heatmaps)]
    bands = _bands(runs)
    if bands:
        out += [
            "",
            "How far each matrix moved from step 0 (mean relative displacement of its rows) by token frequency:",
            "",
        ]
        out.append(md(["direction", "tying", "matrix", *bands["labels"]], bands["rows"]))
    return out


def _bands(runs: list[dict]) -> dict | None:
    rows, labels = [], None
    for (direction, tying), members in groups(runs).items():
        ts = [r["trajectory"] for r in members if r.get("trajectory")]
        for name in MATRIX_NAMES:
            per = [t["snapshots"][-1]["matrices"].get(name, {}).get("displacement_by_band") for t in ts]
            per = [p for p in per if p]
            if not per:
                continue
            bands = [b for b in per[0] if b["rows"]]
            labels = labels or [
                f"count {b['lo']}-{b['hi']}" if b["hi"] != float("inf") else f"count ≥ {b['lo']}" for b in bands
            ]
            cell = []
            for b in bands:
                xs = [q["mean"] for p in per for q in p if q["lo"] == b["lo"] and q["mean"] is not None]
                cell.append(_ms(xs, 3))
            rows.append([direction, tying, name, *cell])
    return {"labels": labels, "rows": rows} if rows else None


def _png(path: Path) -> str:
    return f"![{path.stem}](results/figures/{path.name})"


def validation_bleu(run: dict) -> dict[int, float]:
    """``val/bleu`` by optimizer step, from the run's metrics (its resumptions' included)."""
    out = {}
    for row in run["metrics"]:
        if row.get("val/bleu") not in (None, "") and row.get("step") not in (None, ""):
            out[int(float(row["step"]))] = float(row["val/bleu"])
    return out


def over_training_section(runs: list[dict], cross: list[dict]) -> list[str]:
    out = [
        "Each statistic at every snapshot minus its value at step 0 (displacement: itself), mean over seeds with a ± "
        "one standard deviation band; one colour per tying mode, a line style per direction.",
        "",
    ]
    g = groups(runs)
    for key, null, label in [("displacement", None, "relative displacement from step 0")] + [
        (k, "init", f"{GEOMETRY[k]}, learned minus step 0") for k in GEOMETRY
    ]:
        panels = {}
        for name in MATRIX_NAMES:
            lines = {}
            for (direction, tying), members in g.items():
                ts = [r["trajectory"] for r in members if r.get("trajectory")]
                if ts:
                    lines[(tying, direction)] = learned_minus_null(ts, name, key, null)
            panels[name] = lines
        out.append(_png(over_training(panels, FIGURES / f"{key}.png", label, "difference" if null else key)))
    if cross:
        panels = {}
        for tying in ("decoder", "three_way"):
            lines = {}
            for direction in sorted({c["direction"] for c in cross}):
                cs = [c for c in cross if c["tying"] == tying and c["direction"] == direction]
                if not cs:
                    continue
                steps = sorted(set.intersection(*({s["step"] for s in c["steps"]} for c in cs)))
                for target, mode in (("dec_lut", "none"), ("dec_embed", "src_tgt")):  # colours: blue, green
                    per = [[s[target]["cka"] for s in c["steps"] if s["step"] in steps] for c in cs]
                    ys = [mean(v) for v in zip(*per)]
                    sds = [stdev(v) if len(v) > 1 else 0.0 for v in zip(*per)]
                    lines[(mode, direction)] = (steps, ys, sds)
            panels[f"{tying}-tied matrix"] = lines
        out += [
            "",
            "Press & Wolf as dynamics: linear CKA (by token text) of a tied run's decoder matrix with an untied run of "
            "another seed: with its `dec_lut` (output embedding; blue) and with its `dec_embed` (input embedding; green), "
            "mean over pairs of runs.",
            "",
            _png(
                over_training(
                    panels,
                    FIGURES / "press_wolf_cka.png",
                    "CKA with an untied run's matrices",
                    "linear CKA",
                    legend={
                        (mode, d): f"with its {target} · {d}"
                        for mode, target in (("none", "dec_lut"), ("src_tgt", "dec_embed"))
                        for d in ("en-de", "de-en")
                    },
                )
            ),
        ]
    bleu = {}
    for (direction, tying), members in g.items():
        per = [validation_bleu(r) for r in members]
        steps = sorted(set.intersection(*(set(p) for p in per))) if per else []
        if steps:
            cols = [[p[step] for p in per] for step in steps]
            bleu[(tying, direction)] = (
                steps,
                [mean(c) for c in cols],
                [stdev(c) if len(c) > 1 else 0.0 for c in cols],
            )
    if bleu:
        model = yaml.safe_load((runs[0]["dir"] / "config.yaml").read_text())["model"]
        out += [
            "",
            f"Validation BLEU during training ({model['val_decode']}, the first {model['val_bleu_sentences']} "
            "sentences), mean over seeds:",
            "",
            _png(over_training({"validation BLEU": bleu}, FIGURES / "val_bleu.png", "validation BLEU", "BLEU")),
        ]
    return out


if __name__ == "__main__":
    main()
