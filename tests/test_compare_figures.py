import base64
import io

import pytest

from tiedtransformer.analysis import compare_figures as cf
from tiedtransformer.run.summary import FitSummary


def run(direction="en-de", tying="none", seed=1, metrics=(), name=None):
    return {
        "name": name or f"{direction}-{tying}-{seed}",
        "seed": seed,
        "summary": FitSummary(direction=direction, tying=tying, seed=seed),
        "metrics": [{k: str(v) for k, v in m.items()} for m in metrics],
        "similarity": None,
    }


def test_every_figure_draws_a_tying_mode_in_one_colour_and_a_direction_in_one_style():
    assert len(set(cf.TYING_COLOURS.values())) == len(cf.TYING_COLOURS) == 4
    assert cf.colour("three_way") == cf.TYING_COLOURS["three_way"]
    assert cf.colour("a_new_mode") == cf.colour("a_new_mode") and cf.colour("a_new_mode") in cf.OTHER_COLOURS
    assert cf.line_style("en-de") != cf.line_style("de-en") and cf.marker("en-de") != cf.marker("de-en")


def test_dodge_spreads_only_groups_of_equal_size():
    groups = [{"params": 10_000_000}, {"params": 10_000_000}, {"params": 7_000_000}, {"params": 10_000_400}]
    dx = cf.dodge(groups, 1.0)
    assert dx[2] == 0.0  # alone at its size
    assert sorted([dx[0], dx[1], dx[3]]) == pytest.approx([-0.5, 0.0, 0.5])


def test_moving_average():
    assert cf.moving_average([1, 2, 3, 4], 2) == [1, 1.5, 2.5, 3.5]
    assert cf.moving_average([5.0], 3) == [5.0]


def test_a_run_validated_once_still_draws_a_marker_on_the_step_axis():
    one = run(metrics=[{"step": 240, "epoch": 0, "val/bleu": 12.5, "val/loss": 4.1}])
    fig = cf.curves({("en-de", "none"): [one]})
    assert fig is not None
    bleu_ax = fig.axes[0]
    (line,) = bleu_ax.lines
    assert list(line.get_xdata()) == [240] and list(line.get_ydata()) == [12.5]
    assert line.get_marker() not in (None, "None", "", " ")  # one point is a visible marker, not a 0-length line
    assert bleu_ax.get_xlabel() == "optimizer step"
    lo, hi = bleu_ax.get_xlim()
    assert lo < 240 < hi  # not an epoch axis around 0


def test_curves_are_a_mean_per_group_with_the_seed_spread():
    a = run(seed=1, metrics=[{"step": 100, "val/bleu": 10}, {"step": 200, "val/bleu": 20}])
    b = run(seed=2, metrics=[{"step": 100, "val/bleu": 12}, {"step": 200, "val/bleu": 24}])
    tied = run(tying="three_way", metrics=[{"step": 100, "val/bleu": 9}])
    fig = cf.curves({("en-de", "none"): [a, b], ("en-de", "three_way"): [tied]})
    ax = fig.axes[0]
    mean_line = next(ln for ln in ax.lines if "none" in ln.get_label())
    assert list(mean_line.get_ydata()) == [11, 22] and "2 seeds" in mean_line.get_label()
    assert mean_line.get_color() == cf.colour("none")
    assert len(ax.collections) == 1  # one band: only the group with two seeds has a spread
    (band,) = ax.collections
    ys = band.get_paths()[0].vertices[:, 1]
    assert min(ys) == pytest.approx(10) and max(ys) == pytest.approx(24)


def test_a_resumed_runs_repeated_steps_count_once_in_the_mean():
    resumed = run(seed=1, metrics=[{"step": 10, "train/loss": 9}, {"step": 10, "train/loss": 3}])
    other = run(seed=2, metrics=[{"step": 10, "train/loss": 6}])
    fig = cf.curves({("en-de", "none"): [resumed, other]})
    (line,) = fig.axes[2].lines
    assert list(line.get_ydata()) == [4.5]  # (3 + 6) / 2: the resumed run's later value, counted once


def test_no_logged_metric_is_no_figure():
    assert cf.curves({("en-de", "none"): [run()]}) is None
    assert cf.curves_figure({("en-de", "none"): [run()]}) is None


def test_the_headline_figure_is_a_png_and_nothing_without_bleu():
    groups = [
        {
            "direction": "en-de",
            "tying": "none",
            "params": 9e6,
            "bleu": 30.0,
            "interval": (29, 31),
            "significant": False,
        },
        {
            "direction": "en-de",
            "tying": "three_way",
            "params": 6e6,
            "bleu": 29.0,
            "interval": None,
            "significant": True,
        },
    ]
    png = base64.b64decode(cf.headline_figure(groups, "test BLEU"))
    from PIL import Image

    assert Image.open(io.BytesIO(png)).size[0] > 300
    assert cf.headline_figure([{**groups[0], "bleu": None}], "test BLEU") is None
    ax = cf.headline_plot(groups, "test BLEU").axes[0]
    points = {ln.get_color(): ln for ln in ax.lines if ln.get_marker() in ("o", "s")}
    untied, tied = points[cf.colour("none")], points[cf.colour("three_way")]
    assert tied.get_markerfacecolor() == cf.colour("three_way")  # significant: filled in its mode's colour
    assert untied.get_markerfacecolor() == "white"  # not significant: hollow
    assert list(untied.get_xdata()) == [9.0] and list(untied.get_ydata()) == [30.0]  # millions of parameters
