"""PNG figures of an analysis: the Jaccard heatmap, similarity-vs-rank curves, cosine histograms, and
statistics over training per matrix.

Figures are made without pyplot (``matplotlib.figure.Figure`` on the Agg canvas): no global figure
registry to leak into, no GUI backend, and a lighter start for ``tiedtransformer analyze``. PNGs are
written with a 256-colour palette: a heatmap is about a third of its full-colour size, which keeps the
comparison page (every figure inlined) small enough to send and to keep in a repository.
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure


def new_figure(figsize: tuple[float, float]) -> Figure:
    return Figure(figsize=figsize)


def png_bytes(fig: Figure, dpi: int = 110, tight: bool = True) -> bytes:
    """``fig`` as a palette PNG (lossless for the few colours a chart has; antialiased edges snap
    to the nearest of 256); ``tight``: margins fitted to the labels (a layout pass that costs about
    as much as drawing), else the figure's own."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    if tight:
        fig.tight_layout()
    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # the pixels straight from the canvas: no PNG written and read back before the palette
    rgba = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    out = io.BytesIO()
    rgba.convert("RGB").quantize(256).save(out, format="png", optimize=True)
    return out.getvalue()


def save_png(fig: Figure, path: Path, dpi: int = 110, tight: bool = True) -> Path:
    path.write_bytes(png_bytes(fig, dpi, tight))
    return path


def jaccard_heatmap(table: dict[str, dict[str, float | None]], path: Path, title: str) -> Path:
    """A table {row: {column: value in [0, 1]}} as a heatmap (rows and columns may differ)."""
    rows, cols = list(table), list(next(iter(table.values()), {}))
    values = [[float("nan") if table[a][b] is None else table[a][b] for b in cols] for a in rows]
    fig = new_figure((1.3 * len(cols) + 2, 1.1 * len(rows) + 1.5))
    ax = fig.subplots()
    im = ax.imshow(values, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="white" if not v >= 0.6 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title)
    return save_png(fig, path)


def rank_curves(curves: dict[str, list[float]], path: Path, title: str) -> Path:
    """Cosine of the r-th most similar pair against r, one line per matrix (or run)."""
    fig = new_figure((6.5, 4))
    ax = fig.subplots()
    for name, ys in curves.items():
        ax.plot(range(1, len(ys) + 1), ys, label=name)
    ax.set_xscale("log")
    return _finish(fig, ax, path, title, "rank of pair", "cosine similarity")


def histograms(hists: dict[str, tuple[list[float], list[int]]], path: Path, title: str) -> Path:
    """Distribution of all pairwise cosines, one line per matrix (density)."""
    fig = new_figure((6.5, 4))
    ax = fig.subplots()
    for name, (edges, counts) in hists.items():
        total = sum(counts) or 1
        width = edges[1] - edges[0]
        centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
        ax.plot(centers, [c / total / width for c in counts], label=name)
    return _finish(fig, ax, path, title, "cosine similarity", "density of token pairs")


MODE_COLOURS = {"none": "#4c72b0", "decoder": "#dd8452", "src_tgt": "#55a868", "three_way": "#c44e52"}
DIRECTION_STYLES = {"en-de": "-", "de-en": "--"}


def over_training(
    panels: dict[str, dict[tuple[str, str], tuple[list[int], list[float], list[float]]]],
    path: Path,
    title: str,
    ylabel: str,
    legend: dict[tuple[str, str], str] | None = None,
) -> Path:
    """One panel per matrix; in each, one line per (tying mode, direction): mean over seeds against the
    optimizer step, with a band of ± one standard deviation. One colour per tying mode and one line style
    per direction, the same in every panel; a dotted line at 0 (no difference from the null). ``legend``:
    other labels than "mode · direction" for some lines."""
    fig = new_figure((4.2 * len(panels), 3.6))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (matrix, lines) in zip(axes, panels.items()):
        for (mode, direction), (steps, means, sds) in lines.items():
            colour, style = MODE_COLOURS.get(mode, "black"), DIRECTION_STYLES.get(direction, ":")
            label = (legend or {}).get((mode, direction), f"{mode} · {direction}")
            ax.plot(steps, means, style, color=colour, label=label)
            ax.fill_between(
                steps,
                [m - s for m, s in zip(means, sds)],
                [m + s for m, s in zip(means, sds)],
                color=colour,
                alpha=0.15,
            )
        ax.axhline(0, color="grey", linestyle=":", linewidth=1)
        ax.set_title(matrix)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(ylabel)
    axes[-1].legend(fontsize="small")
    fig.suptitle(title)
    return save_png(fig, path)


def _finish(fig: Figure, ax, path: Path, title: str, xlabel: str, ylabel: str) -> Path:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.12, top=0.92)  # fixed axis labels: no layout pass
    return save_png(fig, path, tight=False)
