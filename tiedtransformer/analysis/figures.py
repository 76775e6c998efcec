"""PNG figures of an analysis: the Jaccard heatmap, similarity-vs-rank curves, cosine histograms."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402


def jaccard_heatmap(table: dict[str, dict[str, float | None]], path: Path, title: str) -> Path:
    """A table {row: {column: value in [0, 1]}} as a heatmap (rows and columns may differ)."""
    rows, cols = list(table), list(next(iter(table.values()), {}))
    values = [[float("nan") if table[a][b] is None else table[a][b] for b in cols] for a in rows]
    fig, ax = plt.subplots(figsize=(1.3 * len(cols) + 2, 1.1 * len(rows) + 1.5))
    im = ax.imshow(values, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="white" if not v >= 0.6 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rank_curves(curves: dict[str, list[float]], path: Path, title: str) -> Path:
    """Cosine of the r-th most similar pair against r, one line per matrix (or run)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, ys in curves.items():
        ax.plot(range(1, len(ys) + 1), ys, label=name)
    ax.set_xscale("log")
    return _finish(fig, ax, path, title, "rank of pair", "cosine similarity")


def histograms(hists: dict[str, tuple[list[float], list[int]]], path: Path, title: str) -> Path:
    """Distribution of all pairwise cosines, one line per matrix (density)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, (edges, counts) in hists.items():
        total = sum(counts) or 1
        width = edges[1] - edges[0]
        centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
        ax.plot(centers, [c / total / width for c in counts], label=name)
    return _finish(fig, ax, path, title, "cosine similarity", "density of token pairs")


def _finish(fig, ax, path: Path, title: str, xlabel: str, ylabel: str) -> Path:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
