"""Side-by-side comparison of runs, from their run directories alone (works offline).

``tiedtransformer compare RUN_DIR... --out report.html`` writes one self-contained HTML page (images
embedded) and the same tables as ``report.md`` and ``report.csv``: the experiment's table (tying,
direction, unique parameters and Δ% against the untied run of the same direction, best BLEU and Δ,
train tokens/s and Δ%, wall time), per run the Jaccard heatmap of the four matrices, their mean
top/bottom similarities and top token pairs, and across runs the similarity-vs-rank curves and the
metrics over epochs on shared axes.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path
from statistics import mean

from tiedtransformer.analysis.dumps import MATRIX_NAMES
from tiedtransformer.errors import ConfigError
from tiedtransformer.training.runs import RunDir, atomic_write_text

COLUMNS = [
    "run",
    "tying",
    "direction",
    "unique_params",
    "params_delta_pct",
    "best_val_bleu",
    "bleu_delta",
    "train_tokens_per_s",
    "speed_delta_pct",
    "wall_s",
    "epochs",
]
SHOWN_PAIRS = 10


def _float(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def load_run(run_dir: str | Path) -> dict:
    d = RunDir(run_dir)
    if not d.summary.is_file():
        raise ConfigError(f"{d.path} is not a run directory of a finished or failed fit: it has no {d.SUMMARY}")
    run = {
        "dir": d.path,
        "name": d.name,
        "summary": json.loads(d.summary.read_text()),
        "metrics": [],
        "similarity": None,
    }
    for part in d.metrics_files():  # a resumed run continues its metrics in resume-1/, resume-2/, ...
        with open(part, newline="") as fh:
            run["metrics"] += list(csv.DictReader(fh))
    if dumps := d.snapshots():
        run["similarity"] = json.loads((dumps[-1] / "similarity.json").read_text())
        run["similarity_dir"] = dumps[-1]
    return run


def table(runs: list[dict]) -> list[dict]:
    """One row per run; Δ against the mean of the untied (tying none) runs of the same direction."""
    rows = []
    for r in runs:
        s = r["summary"]
        base = [
            o["summary"]
            for o in runs
            if o["summary"].get("tying") == "none" and o["summary"].get("direction") == s.get("direction")
        ]

        def rel(key, pct):
            vals = [_float(b.get(key)) for b in base]
            vals = [v for v in vals if v is not None]
            x = _float(s.get(key))
            if not vals or x is None:
                return None
            ref = mean(vals)
            return 100.0 * (x - ref) / ref if pct else x - ref

        rows.append(
            {
                "run": r["name"],
                "tying": s.get("tying"),
                "direction": s.get("direction"),
                "unique_params": s.get("unique_params"),
                "params_delta_pct": rel("unique_params", True),
                "best_val_bleu": _float(s.get("best_val_bleu")),
                "bleu_delta": rel("best_val_bleu", False),
                "train_tokens_per_s": _float(s.get("train_tokens_per_s")),
                "speed_delta_pct": rel("train_tokens_per_s", True),
                "wall_s": _float(s.get("wall_s")),
                "epochs": s.get("epochs"),
            }
        )
    return rows


def _fmt(v, col: str) -> str:
    if v is None:
        return "–"
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


def csv_table(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def rank_figure(runs: list[dict]) -> str | None:
    """Similarity-vs-rank of the top pairs: one panel per matrix, one line per run, shared axes."""
    import matplotlib.pyplot as plt

    from tiedtransformer.analysis import figures  # noqa: F401  (selects the Agg backend)

    with_sim = [r for r in runs if r["similarity"]]
    if not with_sim:
        return None
    fig, axes = plt.subplots(1, len(MATRIX_NAMES), figsize=(4 * len(MATRIX_NAMES), 3.6), sharey=True)
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
    import matplotlib.pyplot as plt

    from tiedtransformer.analysis import figures  # noqa: F401

    panels = [("val/bleu", "epoch"), ("val/loss", "epoch"), ("train/loss", "step")]
    fig, axes = plt.subplots(1, len(panels), figsize=(14, 3.6))
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
    heat = r["similarity_dir"] / "jaccard_top_pairs.png"
    means = [
        [n, m.get("identical_to") or "", f"{m['mean_top']:.3f}", f"{m['mean_bottom']:.3f}"]
        for n, m in sim["matrices"].items()
    ]
    pairs = [
        (n, [[i, a, b, f"{s:.3f}"] for i, (a, b, s) in enumerate(m["top_pairs"][:SHOWN_PAIRS], 1)])
        for n, m in sim["matrices"].items()
        if not m.get("identical_to")
    ]
    heatmap = base64.b64encode(heat.read_bytes()).decode() if heat.is_file() else None
    return {"name": r["name"], "top_k": sim["top_k"], "means": means, "pairs": pairs, "heatmap": heatmap}


def render_page(runs: list[dict], rows: list[dict]) -> str:
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
    )


def write_comparison(run_dirs: list[str], out: str | Path) -> dict[str, Path]:
    if not run_dirs:
        raise ConfigError("compare needs at least one run directory")
    runs = [load_run(d) for d in run_dirs]
    rows = table(runs)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {"html": out, "md": out.with_suffix(".md"), "csv": out.with_suffix(".csv")}
    atomic_write_text(paths["md"], "# Runs compared\n\n" + markdown_table(rows))
    atomic_write_text(paths["csv"], csv_table(rows))
    atomic_write_text(paths["html"], render_page(runs, rows))
    return paths
