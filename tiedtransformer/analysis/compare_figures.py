"""The comparison page's figures, in one visual language: one colour per tying mode, one line style
(and marker) per direction, the same in every figure; runs named by their labels. Each returns a
base64 PNG, or None when there is nothing to draw."""

from __future__ import annotations

import base64

from tiedtransformer.analysis.dumps import MATRIX_NAMES
from tiedtransformer.analysis.numbers import number

TYING_COLOURS = {"none": "#4d4d4d", "decoder": "#1f77b4", "src_tgt": "#ff7f0e", "three_way": "#2ca02c"}
OTHER_COLOURS = ["#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
DIRECTION_LINES = {"en-de": "-", "de-en": "--"}
DIRECTION_MARKERS = {"en-de": "o", "de-en": "s"}


def colour(tying) -> str:
    """The colour of a tying mode (a mode this version does not know: one of the spare colours, fixed by name)."""
    t = str(tying)
    return TYING_COLOURS.get(t) or OTHER_COLOURS[sum(map(ord, t)) % len(OTHER_COLOURS)]


def line_style(direction) -> str:
    return DIRECTION_LINES.get(str(direction), ":")


def marker(direction) -> str:
    return DIRECTION_MARKERS.get(str(direction), "D")


def _png(fig) -> str:
    from tiedtransformer.analysis.figures import png_bytes

    return base64.b64encode(png_bytes(fig, dpi=100)).decode()


def dodge(groups: list[dict], width: float) -> list[float]:
    """Sideways offsets (in the x axis's units) that keep groups with the same parameter count apart: the
    groups of one count spread evenly over ``width``, centred on it."""
    clusters: dict[float, list[int]] = {}
    for i, g in enumerate(groups):
        clusters.setdefault(round(g["params"], -3), []).append(i)
    out = [0.0] * len(groups)
    for members in clusters.values():
        for j, i in enumerate(members):
            out[i] = 0.0 if len(members) == 1 else width * (j / (len(members) - 1) - 0.5)
    return out


def headline_figure(groups: list[dict], metric: str) -> str | None:
    fig = headline_plot(groups, metric)
    return None if fig is None else _png(fig)


def headline_plot(groups: list[dict], metric: str):
    """BLEU with its 95% interval per (direction, tying) group against unique parameters (groups of equal
    size dodged sideways); a filled marker where every seed's paired test against the untied run has
    p < 0.05, a hollow one otherwise. Colour: tying mode; marker: direction."""
    from matplotlib.lines import Line2D

    from tiedtransformer.analysis.figures import new_figure

    shown = [g for g in groups if g["bleu"] is not None and g["params"] is not None]
    if not shown:
        return None
    fig = new_figure((5.0, 4.2))
    ax = fig.subplots()
    span = (max(g["params"] for g in shown) - min(g["params"] for g in shown)) / 1e6 or 1.0
    for g, dx in zip(shown, dodge(shown, 0.12 * span)):
        x, y = g["params"] / 1e6 + dx, g["bleu"]
        err = None if g["interval"] is None else [[y - g["interval"][0]], [g["interval"][1] - y]]
        c = colour(g["tying"])
        ax.errorbar(
            [x],
            [y],
            yerr=err,
            fmt=marker(g["direction"]),
            color=c,
            markerfacecolor=c if g["significant"] else "white",
            markersize=7,
            capsize=3,
        )
    modes = list(dict.fromkeys(g["tying"] for g in shown))
    directions = list(dict.fromkeys(g["direction"] for g in shown))
    handles = [Line2D([], [], color=colour(t), linewidth=3, label=t) for t in modes]
    handles += [
        Line2D([], [], color="black", marker=marker(d), linestyle="none", markerfacecolor="white", label=d)
        for d in directions
    ]
    handles.append(Line2D([], [], color="black", marker="o", linestyle="none", label="filled: p < 0.05, every seed"))
    ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=3, frameon=False)
    ax.set_xlabel("unique parameters (millions; a tied matrix counted once)", fontsize=8)
    ax.set_ylabel(f"{metric} (mean, 95% interval)", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    return fig


def _points(run: dict, key: str) -> list[tuple[float, float]]:
    """(step, value) of ``key``, one per step: a resumed run logs the steps after its last checkpoint again,
    and the later value (the run that went on) is the one kept."""
    out = {}
    for m in run["metrics"]:
        x, y = number(m.get("step")), number(m.get(key))
        if x is not None and y is not None:
            out[x] = y
    return sorted(out.items())


def _group_curve(members: list[dict], key: str) -> tuple[list, list, list, list] | None:
    """Steps, mean, min and max over the group's runs at every step some run logged ``key``."""
    by_step: dict[float, list[float]] = {}
    for r in members:
        for x, y in _points(r, key):
            by_step.setdefault(x, []).append(y)
    if not by_step:
        return None
    steps = sorted(by_step)
    return (
        steps,
        [sum(by_step[s]) / len(by_step[s]) for s in steps],
        [min(by_step[s]) for s in steps],
        [max(by_step[s]) for s in steps],
    )


CURVES = [("val/bleu", "validation BLEU"), ("val/loss", "validation loss"), ("train/loss", "training loss")]
SMOOTH = {"train/loss": 5}
"""Logged points a curve's moving average spans (training loss is logged per batch and jumps with its length)."""


def moving_average(values: list[float], window: int) -> list[float]:
    """The mean of each value and the ``window - 1`` before it (fewer at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def curves_figure(groups: dict[tuple[str, str], list[dict]]) -> str | None:
    fig = curves(groups)
    return None if fig is None else _png(fig)


def curves(groups: dict[tuple[str, str], list[dict]]):
    """Validation BLEU, validation loss and training loss against the optimizer step: a mean line per
    (direction, tying) group with its spread across seeds (min to max) as a band; markers on the
    validation points, so a run that validated once still shows a point. None where nothing was logged."""
    from tiedtransformer.analysis.figures import new_figure

    fig = new_figure((12, 3.4))
    axes = fig.subplots(1, len(CURVES))
    drawn = False
    for ax, (key, title) in zip(axes, CURVES):
        for (direction, tying), members in groups.items():
            curve = _group_curve(members, key)
            if curve is None:
                continue
            steps, mid, lo, hi = curve
            if (w := SMOOTH.get(key, 1)) > 1:
                mid, lo, hi = (moving_average(v, w) for v in (mid, lo, hi))
            c = colour(tying)
            seeds = f" ({len(members)} seeds)" if len(members) > 1 else ""
            ax.plot(
                steps,
                mid,
                linestyle=line_style(direction),
                marker=None if key.startswith("train") else marker(direction),
                markersize=4,
                color=c,
                label=f"{direction} · {tying}{seeds}",
            )
            if len(members) > 1:
                ax.fill_between(steps, lo, hi, color=c, alpha=0.15, linewidth=0)
            drawn = True
        ax.set_title(title + (f" (moving mean of {SMOOTH[key]} logs)" if key in SMOOTH else ""), fontsize=10)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    if not drawn:
        return None
    next(ax for ax in axes if ax.lines).legend(fontsize=7)
    return fig


def rank_figure(runs: list[dict]) -> str | None:
    """Similarity against rank of the top pairs: one panel per matrix, one line per run, coloured by tying
    mode and styled by direction (the legend names each group once)."""
    from tiedtransformer.analysis.figures import new_figure

    with_sim = [r for r in runs if r["similarity"]]
    if not with_sim:
        return None
    fig = new_figure((12, 3.2))
    axes = fig.subplots(1, len(MATRIX_NAMES), sharey=True)
    for ax, name in zip(axes, MATRIX_NAMES):
        named = set()
        for r in with_sim:
            m = r["similarity"].matrices.get(name)
            if not m:
                continue
            s = r["summary"]
            group = f"{s.direction} · {s.tying}"
            ys = [p[2] for p in m.top_pairs]
            ax.plot(
                range(1, len(ys) + 1),
                ys,
                color=colour(s.tying),
                linestyle=line_style(s.direction),
                linewidth=1,
                alpha=0.8,
                label=None if group in named else group,
            )
            named.add(group)
        ax.set_xscale("log")
        ax.set_title(name)
        ax.set_xlabel("rank of pair")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("cosine similarity")
    axes[-1].legend(fontsize=7)
    return _png(fig)
