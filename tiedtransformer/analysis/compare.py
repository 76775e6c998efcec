"""Side-by-side comparison of runs, from their run directories alone (works offline).

``tiedtransformer compare RUN_DIR... --out report.html`` writes one self-contained HTML page (images
embedded) and its tables as ``report.md`` (the run table also as ``report.csv``): first the cost of tying
per (direction, tying) group (BLEU ± 95% against unique parameters, beside its figure), then the run table (tying,
direction, unique parameters and Δ% against the untied run of the same direction, best BLEU and Δ,
test BLEU/chrF with their 95% bootstrap intervals and paired-bootstrap p-values against the untied
run of the same direction and seed, train tokens/s and Δ%, wall time; a run named by direction, tying and seed);
the seed experiment's tables
over the runs of each (direction, tying) group: mean ± std across seeds, the mean top-K similarity
per matrix beside its nulls, the 4×4 Jaccard matrix of the top pairs, SimLex-999 / WordSim-353 ρ,
and how settled each matrix is between snapshots; per run the Jaccard heatmap, the means and the
top token pairs; across runs the similarity-vs-rank curves and BLEU and losses against the optimizer step.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
from pathlib import Path
from statistics import mean

import yaml

from tiedtransformer.analysis import compare_figures, schema
from tiedtransformer.analysis.headline import headline, headline_metric, headline_table
from tiedtransformer.analysis.numbers import fmt, number, signed
from tiedtransformer.analysis.scores import paired_significance
from tiedtransformer.analysis.seed_tables import groups, seed_tables
from tiedtransformer.atomic import atomic_write_text
from tiedtransformer.errors import ConfigError
from tiedtransformer.run.files import DumpDir, RunDir
from tiedtransformer.run.label import distinct_labels, flat, run_label
from tiedtransformer.run.summary import FitSummary

COLUMNS = [
    "run",
    "tying",
    "direction",
    "unique_params",
    "params_delta_pct",
    "seed",
    "best_val_bleu",
    "bleu_delta",
    "test_bleu",
    "test_bleu_p",
    "test_chrf",
    "test_chrf_p",
    "train_tokens_per_s",
    "speed_delta_pct",
    "wall_s",
    "epochs",
]
HEADERS = {
    "run": "run",
    "tying": "tying",
    "direction": "direction",
    "unique_params": "unique params (M)",
    "params_delta_pct": "Δ params (%)",
    "seed": "seed",
    "best_val_bleu": "best val BLEU",
    "bleu_delta": "Δ best val BLEU",
    "test_bleu": "test BLEU ± 95% CI",
    "test_bleu_p": "p (test BLEU)",
    "test_chrf": "test chrF ± 95% CI",
    "test_chrf_p": "p (test chrF)",
    "train_tokens_per_s": "train tokens/s",
    "speed_delta_pct": "Δ speed (%)",
    "wall_s": "wall time (s)",
    "epochs": "epochs",
}
"""The run table's headers, in words and units (Markdown and the page; the CSV keeps the field names)."""
SECONDARY = {"tying", "direction", "seed", "test_chrf", "test_chrf_p", "train_tokens_per_s", "speed_delta_pct"}
SECONDARY |= {"wall_s", "epochs"}
"""Columns the page folds away until asked (the label already says tying, direction and seed)."""
SHOWN_PAIRS = 10


def load_run(run_dir: str | Path) -> dict:
    d = RunDir(run_dir)
    if not d.summary.is_file():
        raise ConfigError(f"{d.path} is not a run directory of a finished or failed fit: it has no {d.SUMMARY}")
    if (summary := d.read_summary()) is None:
        raise ConfigError(f"{d.summary}: not readable as JSON (a fit writes it whole; restore it or rerun the fit)")
    run = {
        "dir": d.path,
        "name": d.name,
        "summary": summary,
        "metrics": [],
        "similarity": None,
    }
    for part in d.metrics_files():  # a resumed run continues its metrics in resume-1/, resume-2/, ...
        with open(part, newline="") as fh:
            run["metrics"] += list(csv.DictReader(fh))
    if dumps := d.snapshots():
        run["similarity"] = _report(DumpDir(dumps[-1]).similarity)
        run["similarity_dir"] = dumps[-1]
        run["top_pairs_by_step"] = _top_pairs_by_step(dumps)
    elif d.final_similarity.is_file():  # a kept copy of the run (docs/keep_runs.py): no dumps
        run["similarity"] = _report(d.final_similarity)
    step0 = DumpDir(d.snapshot(0)).similarity
    step0 = step0 if step0.is_file() else d.init_similarity
    run["similarity_init"] = _report(step0) if step0.is_file() else None  # the step-0 report: a null
    if d.trajectory.is_file():  # written by `tiedtransformer analyze RUN`
        run["trajectory"] = json.loads(d.trajectory.read_text())
    config = _config(d)
    run["seed"] = run["summary"].seed if run["summary"].seed is not None else config.get("seed_everything")
    run["settings"] = {k: v for k, v in flat(config).items() if not k.startswith("run.") and k != "ckpt_path"}
    run["label"] = run_label(summary.direction, summary.tying, run["seed"])
    lang = summary.target_lang or "-"
    hyps, refs = d.final_translations(lang, "test"), d.final_references(lang, "test")
    if hyps.is_file() and refs.is_file():
        run["test"] = (_lines(hyps), _lines(refs))
    return run


def _report(path: Path) -> schema.DumpAnalysis:
    return schema.DumpAnalysis.from_json(json.loads(path.read_text()))


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def _config(d: RunDir) -> dict:
    try:
        config = yaml.safe_load(d.config.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return config if isinstance(config, dict) else {}


def label_runs(runs: list[dict]) -> None:
    """Each run's ``label``: direction · tying · seed, and where two runs share that, the settings in which
    they differ (their directory names where none does)."""
    base = {r["name"]: run_label(r["summary"].direction, r["summary"].tying, r["seed"]) for r in runs}
    unique = distinct_labels(base, {r["name"]: r.get("settings", {}) for r in runs})
    for r in runs:
        r["label"] = unique[r["name"]]


def _top_pairs_by_step(dumps: list[Path]) -> list[tuple[int, dict[str, set]]]:
    """Each analysed snapshot's top pairs per matrix (as token-text pairs), oldest first."""
    out = []
    for dump in dumps:
        sim = _report(DumpDir(dump).similarity)
        pairs = {n: {tuple(sorted(p[:2])) for p in m.top_pairs} for n, m in sim.matrices.items()}
        out.append((int(sim.meta.get("step") or 0), pairs))
    return out


def significance(runs: list[dict]) -> dict[str, dict]:
    """Paired bootstrap p-values (sacreBLEU) of each run's test translations against those of the
    untied run of the same direction and seed (the first such run; a run without one is not tested)."""
    out: dict[str, dict] = {}
    for base in runs:
        s = base["summary"]
        if s.tying != "none" or "test" not in base:
            continue
        base_hyps, refs = base["test"]
        others = {
            r["name"]: r["test"][0]
            for r in runs
            if r is not base
            and r["name"] not in out
            and "test" in r
            and r["summary"].direction == s.direction
            and r["seed"] == base["seed"]
            and r["test"][1] == refs
        }
        out |= paired_significance(base_hyps, others, refs)
    return out


def table(runs: list[dict]) -> list[dict]:
    """One row per run; Δ against the mean of the untied (tying none) runs of the same direction."""
    rows = []
    tests = significance(runs)
    for r in runs:
        s = r["summary"]
        base = [o["summary"] for o in runs if o["summary"].tying == "none" and o["summary"].direction == s.direction]

        def rel(key, pct):
            vals = [number(getattr(b, key)) for b in base]
            vals = [v for v in vals if v is not None]
            x = number(getattr(s, key))
            if not vals or x is None:
                return None
            ref = mean(vals)
            return 100.0 * (x - ref) / ref if pct else x - ref

        rows.append(
            {
                "run": r.get("label") or r["name"],
                "directory": r["name"],
                "tying": s.tying,
                "direction": s.direction,
                "unique_params": s.unique_params,
                "params_delta_pct": rel("unique_params", True),
                "seed": r["seed"],
                "best_val_bleu": number(s.best_val_bleu),
                "bleu_delta": rel("best_val_bleu", False),
                "test_bleu": _with_ci(s, "bleu"),
                "test_bleu_p": tests.get(r["name"], {}).get("bleu_p"),
                "test_chrf": _with_ci(s, "chrf"),
                "test_chrf_p": tests.get(r["name"], {}).get("chrf_p"),
                "train_tokens_per_s": number(s.train_tokens_per_s),
                "speed_delta_pct": rel("train_tokens_per_s", True),
                "wall_s": number(s.wall_s),
                "epochs": s.epochs,
            }
        )
    return rows


def _with_ci(summary: FitSummary, metric: str) -> tuple[float, float | None] | None:
    x = number(getattr(summary, f"final_test_{metric}"))
    return None if x is None else (x, number(getattr(summary, f"final_test_{metric}_ci")))


def _fmt(v, col: str) -> str:
    if v is None:
        return "–"
    if col in ("test_bleu", "test_chrf"):
        return f"{v[0]:.2f}" + ("" if v[1] is None else f" ± {v[1]:.2f}")
    if col.endswith("_p"):
        return f"{v:.3f}"
    if col in ("params_delta_pct", "speed_delta_pct"):
        return signed(v, 1)
    if col == "bleu_delta":
        return signed(v, 2)
    if col == "unique_params":
        return f"{v / 1e6:.2f}"
    if col in ("best_val_bleu",):
        return f"{v:.2f}"
    if col in ("train_tokens_per_s", "wall_s"):
        return f"{v:,.0f}"
    return str(v)


def _sort_value(v):
    """What a column sorts by: the number behind a cell (a test score without its interval)."""
    if isinstance(v, tuple):
        v = v[0]
    return v if isinstance(v, int | float) and not isinstance(v, bool) else None


def markdown_table(rows: list[dict]) -> str:
    header = [HEADERS[c] for c in COLUMNS] + ["directory"]
    return _md(header, [[_fmt(r[c], c) for c in COLUMNS] + [r["directory"]] for r in rows])


def _md(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    cells = [[str(c).replace("|", "\\|") for c in r] for r in rows]  # a token may be a "|"
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells]) + "\n"


def csv_table(rows: list[dict]) -> str:
    """The run table for programs: field names as headers, numbers unformatted, the label and the directory."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[*COLUMNS, "directory"])
    w.writeheader()
    w.writerows([{k: (v[0] if isinstance(v, tuple) else v) for k, v in r.items()} for r in rows])
    return buf.getvalue()


def _link(target: Path | None, page: Path) -> str | None:
    """``target`` relative to the page's folder (the page links, it fetches nothing)."""
    return None if target is None else Path(os.path.relpath(target, page.parent)).as_posix()


def _run_section(r: dict, page: Path) -> dict:
    """What the page shows of one run's last embedding analysis, and links to its own report and figures."""
    sim = r["similarity"]
    dump = DumpDir(r["similarity_dir"]) if r.get("similarity_dir") else None
    links = [("run directory", _link(Path(r["dir"]), page))]
    if dump is not None:
        links += [(f.name, _link(f, page)) for f in (dump.report, dump.figure("jaccard_top_pairs")) if f.is_file()]
    out = {"name": r["name"], "label": r.get("label") or r["name"], "links": links, "means": None}
    if not sim:
        return out
    heat = dump.figure("jaccard_top_pairs") if dump is not None else None  # a kept copy: none
    means = [
        [n, m.identical_to or "", *(fmt(m.stat(s.key)) for s in schema.STATISTICS)] for n, m in sim.matrices.items()
    ]
    pairs = [
        (n, [[i, a, b, f"{s:.3f}"] for i, (a, b, s) in enumerate(m.top_pairs[:SHOWN_PAIRS], 1)])
        for n, m in sim.matrices.items()
        if not m.identical_to
    ]
    heatmap = base64.b64encode(heat.read_bytes()).decode() if heat and heat.is_file() else None
    header = ["matrix", "identical to", *(s.words(sim.top_k) for s in schema.STATISTICS)]
    return out | {"top_k": sim.top_k, "header": header, "means": means, "pairs": pairs, "heatmap": heatmap}


def render_page(runs: list[dict], rows: list[dict], tables: list[dict], page: Path = Path("report.html")) -> str:
    """The comparison page (template ``compare.html.j2``; jinja2 escapes every value)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tiedtransformer.analysis", "."), autoescape=True, keep_trailing_newline=True
    )
    key, metric = headline_metric(runs)
    heads = headline(runs, rows)
    return env.get_template("compare.html.j2").render(
        runs=runs,
        metric=metric,
        headline_figure=compare_figures.headline_figure(heads, metric),
        headline_table=headline_table(heads, metric),
        columns=[{"name": HEADERS[c], "secondary": c in SECONDARY} for c in COLUMNS],
        rows=[
            {
                "directory": r["directory"],
                "cells": [
                    {"text": _fmt(r[c], c), "v": _sort_value(r[c]), "secondary": c in SECONDARY} for c in COLUMNS
                ],
            }
            for r in rows
        ],
        rank_figure=compare_figures.rank_figure(runs),
        curves_figure=compare_figures.curves_figure(groups(runs)),
        sections=[_run_section(r, page) for r in runs],
        seed_tables=tables,
    )


def write_comparison(run_dirs: list[str], out: str | Path) -> dict[str, Path]:
    if not run_dirs:
        raise ConfigError("compare needs at least one run directory")
    return write_pages([load_run(d) for d in run_dirs], out)[0]


def write_pages(runs: list[dict], out: str | Path) -> tuple[dict[str, Path], list[dict], list[dict]]:
    """The page, its Markdown and CSV for loaded runs; also returns the rows and the seed's tables."""
    label_runs(runs)
    runs = [r for members in groups(runs).values() for r in members]  # by direction, tying and seed
    rows = table(runs)
    tables = seed_tables(runs, rows)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {"html": out, "md": out.with_suffix(".md"), "csv": out.with_suffix(".csv")}
    extra = "".join(f"\n## {t['title']}\n\n{t['note']}\n\n" + _md(t["header"], t["rows"]) for t in tables)
    _, metric = headline_metric(runs)
    cost = headline_table(headline(runs, rows), metric)
    head = f"## What tying costs: {metric} (mean over seeds, 95% interval)\n\n" + _md(
        cost["header"], [[text for text, _ in r] for r in cost["rows"]]
    )
    atomic_write_text(paths["md"], "# Runs compared\n\n" + head + "\n## Runs\n\n" + markdown_table(rows) + extra)
    atomic_write_text(paths["csv"], csv_table(rows))
    atomic_write_text(paths["html"], render_page(runs, rows, tables, out))
    return paths, rows, tables
