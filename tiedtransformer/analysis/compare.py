"""Side-by-side comparison of runs, from their run directories alone (works offline).

``tiedtransformer compare RUN_DIR... --out report.html`` writes one self-contained HTML page (images
embedded) and the same tables as ``report.md`` and ``report.csv``: the experiment's table (tying,
direction, unique parameters and Δ% against the untied run of the same direction, best BLEU and Δ,
test BLEU/chrF with their 95% bootstrap intervals and paired-bootstrap p-values against the untied
run of the same direction and seed, train tokens/s and Δ%, wall time); the seed experiment's tables
over the runs of each (direction, tying) group: mean ± std across seeds, the mean top-K similarity
per matrix beside its nulls, the 4×4 Jaccard matrix of the top pairs, SimLex-999 / WordSim-353 ρ,
and how settled each matrix is between snapshots; per run the Jaccard heatmap, the means and the
top token pairs; across runs the similarity-vs-rank curves and the metrics over epochs.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path
from statistics import mean

import yaml

from tiedtransformer.analysis import schema
from tiedtransformer.analysis.dumps import MATRIX_NAMES
from tiedtransformer.analysis.numbers import fmt, number
from tiedtransformer.analysis.scores import paired_significance
from tiedtransformer.analysis.seed_tables import seed_tables
from tiedtransformer.atomic import atomic_write_text
from tiedtransformer.errors import ConfigError
from tiedtransformer.run.files import DumpDir, RunDir
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
        run["similarity"] = json.loads(DumpDir(dumps[-1]).similarity.read_text())
        run["similarity_dir"] = dumps[-1]
        run["top_pairs_by_step"] = _top_pairs_by_step(dumps)
    elif d.final_similarity.is_file():  # a kept copy of the run (docs/keep_runs.py): no dumps
        run["similarity"] = json.loads(d.final_similarity.read_text())
    if d.trajectory.is_file():  # written by `tiedtransformer analyze RUN`
        run["trajectory"] = json.loads(d.trajectory.read_text())
    run["seed"] = run["summary"].seed if run["summary"].seed is not None else _config_seed(d)
    lang = summary.target_lang or "-"
    hyps, refs = d.final_translations(lang, "test"), d.final_references(lang, "test")
    if hyps.is_file() and refs.is_file():
        run["test"] = (_lines(hyps), _lines(refs))
    return run


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def _config_seed(d: RunDir):
    try:
        return (yaml.safe_load(d.config.read_text()) or {}).get("seed_everything")
    except (OSError, yaml.YAMLError):
        return None


def _top_pairs_by_step(dumps: list[Path]) -> list[tuple[int, dict[str, set]]]:
    """Each analysed snapshot's top pairs per matrix (as token-text pairs), oldest first."""
    out = []
    for dump in dumps:
        sim = json.loads(DumpDir(dump).similarity.read_text())
        pairs = {n: {tuple(sorted(p[:2])) for p in m["top_pairs"]} for n, m in sim["matrices"].items()}
        out.append((int(sim.get("meta", {}).get("step") or 0), pairs))
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
                "run": r["name"],
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
        return f"{v:+.1f}%"
    if col == "bleu_delta":
        return f"{v:+.2f}"
    if col == "unique_params":
        return f"{v / 1e6:.2f}M"
    if col in ("best_val_bleu",):
        return f"{v:.2f}"
    if col in ("train_tokens_per_s", "wall_s"):
        return f"{v:,.0f}"
    return str(v)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(r[c], c) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _md(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    cells = [[str(c).replace("|", "\\|") for c in r] for r in rows]  # a token may be a "|"
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells]) + "\n"


def csv_table(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    w.writerows([{k: (v[0] if isinstance(v, tuple) else v) for k, v in r.items()} for r in rows])
    return buf.getvalue()


def _png(fig) -> str:
    from tiedtransformer.analysis.figures import png_bytes

    return base64.b64encode(png_bytes(fig, dpi=100)).decode()


def rank_figure(runs: list[dict]) -> str | None:
    """Similarity-vs-rank of the top pairs: one panel per matrix, one line per run, shared axes."""
    from tiedtransformer.analysis.figures import new_figure

    with_sim = [r for r in runs if r["similarity"]]
    if not with_sim:
        return None
    fig = new_figure((4 * len(MATRIX_NAMES), 3.6))
    axes = fig.subplots(1, len(MATRIX_NAMES), sharey=True)
    for ax, name in zip(axes, MATRIX_NAMES):
        for r in with_sim:
            m = r["similarity"]["matrices"].get(name)
            if m:
                ys = [p[2] for p in m["top_pairs"]]
                ax.plot(range(1, len(ys) + 1), ys, label=r["name"])
        ax.set_xscale("log")
        ax.set_title(name)
        ax.set_xlabel("rank of pair")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("cosine similarity")
    axes[-1].legend(fontsize=7)
    return _png(fig)


def metrics_figure(runs: list[dict]) -> str | None:
    """val/bleu and val/loss by epoch, train/loss by step, one line per run."""
    from tiedtransformer.analysis.figures import new_figure

    panels = [("val/bleu", "epoch"), ("val/loss", "epoch"), ("train/loss", "step")]
    fig = new_figure((14, 3.6))
    axes = fig.subplots(1, len(panels))
    drawn = False
    for ax, (key, x) in zip(axes, panels):
        for r in runs:
            pts = [(float(m[x]), float(m[key])) for m in r["metrics"] if m.get(key) not in (None, "")]
            if pts:
                ax.plot(*zip(*pts), marker="o" if x == "epoch" else None, markersize=3, label=r["name"])
                drawn = True
        ax.set_title(key)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return _png(fig) if drawn else None


def _run_section(r: dict) -> dict:
    """What the page shows of one run's last embedding analysis."""
    sim = r["similarity"]
    if not sim:
        return {"name": r["name"], "means": None}
    heat = (
        DumpDir(r["similarity_dir"]).figure("jaccard_top_pairs") if r.get("similarity_dir") else None
    )  # a kept copy: none
    means = [
        [n, m.get("identical_to") or "", *(fmt(m.get(s.key)) for s in schema.STATISTICS)]
        for n, m in sim["matrices"].items()
    ]
    pairs = [
        (n, [[i, a, b, f"{s:.3f}"] for i, (a, b, s) in enumerate(m["top_pairs"][:SHOWN_PAIRS], 1)])
        for n, m in sim["matrices"].items()
        if not m.get("identical_to")
    ]
    heatmap = base64.b64encode(heat.read_bytes()).decode() if heat and heat.is_file() else None
    header = ["matrix", "identical to", *(s.words(sim["top_k"]) for s in schema.STATISTICS)]
    return {
        "name": r["name"],
        "top_k": sim["top_k"],
        "header": header,
        "means": means,
        "pairs": pairs,
        "heatmap": heatmap,
    }


def render_page(runs: list[dict], rows: list[dict], tables: list[dict]) -> str:
    """The comparison page (template ``compare.html.j2``; jinja2 escapes every value)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tiedtransformer.analysis", "."), autoescape=True, keep_trailing_newline=True
    )
    return env.get_template("compare.html.j2").render(
        runs=runs,
        columns=COLUMNS,
        rows=[[_fmt(r[c], c) for c in COLUMNS] for r in rows],
        rank_figure=rank_figure(runs),
        metrics_figure=metrics_figure(runs),
        sections=[_run_section(r) for r in runs],
        seed_tables=tables,
    )


def write_comparison(run_dirs: list[str], out: str | Path) -> dict[str, Path]:
    if not run_dirs:
        raise ConfigError("compare needs at least one run directory")
    return write_pages([load_run(d) for d in run_dirs], out)[0]


def write_pages(runs: list[dict], out: str | Path) -> tuple[dict[str, Path], list[dict], list[dict]]:
    """The page, its Markdown and CSV for loaded runs; also returns the rows and the seed's tables."""
    rows = table(runs)
    tables = seed_tables(runs, rows)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {"html": out, "md": out.with_suffix(".md"), "csv": out.with_suffix(".csv")}
    extra = "".join(f"\n## {t['title']}\n\n{t['note']}\n\n" + _md(t["header"], t["rows"]) for t in tables)
    atomic_write_text(paths["md"], "# Runs compared\n\n" + markdown_table(rows) + extra)
    atomic_write_text(paths["csv"], csv_table(rows))
    atomic_write_text(paths["html"], render_page(runs, rows, tables))
    return paths, rows, tables
