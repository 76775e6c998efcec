import csv
import io
import os
import shutil
import subprocess

import pytest

from tests.test_cli import run_main
from tests.test_sweep import tiny_sweep
from tiedtransformer.analysis import schema
from tiedtransformer.analysis.compare import load_run, table
from tiedtransformer.errors import ConfigError
from tiedtransformer.training.sweep import run_local


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A local sweep of two demo runs: tying none and three_way."""
    tmp = tmp_path_factory.mktemp("sweep")
    with pytest.MonkeyPatch.context() as mp:  # module scope: the per-test isolation is not active yet
        mp.chdir(tmp)
        mp.setenv("TIEDTRANSFORMER_CACHE", str(tmp / "cache"))
        mp.setenv("WANDB_MODE", "disabled")
        assert run_local(str(tiny_sweep(tmp)), root="runs", out=io.StringIO()) == 0
    return sorted((tmp / "runs").iterdir())


def test_table_has_deltas_against_the_untied_run(two_runs):
    rows = {r["tying"]: r for r in table([load_run(d) for d in two_runs])}
    assert rows["none"]["params_delta_pct"] == 0.0 and rows["none"]["bleu_delta"] == 0.0
    tied, untied = rows["three_way"], rows["none"]
    expected = 100 * (tied["unique_params"] - untied["unique_params"]) / untied["unique_params"]
    assert tied["params_delta_pct"] == pytest.approx(expected) and tied["params_delta_pct"] < 0
    assert tied["speed_delta_pct"] is not None and tied["wall_s"] > 0


def test_compare_writes_html_markdown_and_csv(two_runs, tmp_path, capsys):
    out = tmp_path / "cmp" / "report.html"
    code, _, _ = run_main(["compare", *map(str, two_runs), "--out", str(out)], capsys)
    assert code == 0
    page = out.read_text()
    assert page.count("data:image/png;base64,") >= 4  # rank curves, metrics, a heatmap per run
    assert "http://" not in page and "https://" not in page  # nothing to fetch: works offline
    assert "three_way" in page and "enc_lut" in page
    rows = list(csv.DictReader(open(out.with_suffix(".csv"))))
    assert {r["tying"] for r in rows} == {"none", "three_way"}
    md = out.with_suffix(".md").read_text()
    assert "| run | tying | direction |" in md
    # the seed experiment's tables, on the page and in the Markdown
    for title in (
        "What tying costs, across seeds",
        "Mean cosine of the top-30 pairs, against its nulls",
        "Jaccard overlap of the top-30 pairs between matrices",
        "Human word similarity",
        "How settled each matrix is",
        "Most similar pairs per matrix",
    ):
        assert title in md and title in page
    assert md.count(" / ") > 8  # learned / init / random


def test_test_bleu_has_intervals_and_a_paired_p_value_against_the_untied_run(two_runs):
    runs = [load_run(d) for d in two_runs]
    rows = {r["tying"]: r for r in table(runs)}
    assert rows["none"]["test_bleu_p"] is None  # the baseline is not tested against itself
    p = rows["three_way"]["test_bleu_p"]
    assert p is not None and 0 < p <= 1 and 0 < rows["three_way"]["test_chrf_p"] <= 1
    bleu, ci = rows["three_way"]["test_bleu"]
    assert ci is not None and ci >= 0
    tied = next(r for r in runs if r["summary"].tying == "three_way")
    hyps, refs = tied["test"]
    assert len(hyps) == len(refs) == tied["summary"].final_test_sentences == 20


def test_compare_rejects_a_folder_that_is_not_a_run(tmp_path, capsys):
    code, _, err = run_main(["compare", str(tmp_path)], capsys)
    assert code == 2 and "no summary.json" in err
    with pytest.raises(ConfigError):
        load_run(tmp_path)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=5000",
]


def test_the_page_renders_in_a_real_browser(two_runs, tmp_path, capsys):
    if CHROMIUM is None:  # CI installs it (.ci/run): there a missing browser is a failure, not a skip
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but no chromium: the comparison page cannot be checked (see .ci/run)")
        pytest.skip("no chromium installed (Debian: apt-get update && apt-get install chromium)")
    out = tmp_path / "report.html"
    assert run_main(["compare", *map(str, two_runs), "--out", str(out)], capsys)[0] == 0
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'u1'}", "--dump-dom", out.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert 'data-images-ok="true"' in dom  # every embedded figure decoded
    assert '<table class="runs">' in dom
    # the seed's tables: one per statistic of the schema beside five others
    assert dom.count('<table class="seed">') == 5 + len(schema.STATISTICS) and "What tying costs, across seeds" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'u2'}",
            "--window-size=1400,1600",
            f"--screenshot={shot}",
            out.as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    from PIL import Image

    img = Image.open(shot).convert("L")
    assert img.size == (1400, 1600)
    top = img.crop((0, 0, 1400, 250))  # the table: dark text on white, many distinct rows of pixels
    figures = img.crop((0, 250, 1400, 1000))  # the curves
    for region in (top, figures):
        hist = region.histogram()
        assert hist[255] < 0.98 * sum(hist), "region is blank"
        assert sum(1 for v in hist if v) > 20, "region has no detail"


def test_the_geometry_tables_come_from_each_runs_trajectory(two_runs, tmp_path, capsys):
    copies = [shutil.copytree(d, tmp_path / d.name) for d in two_runs]  # the module's runs stay as they are
    md_without = tmp_path / "without.md"
    assert run_main(["compare", *map(str, copies), "--out", str(md_without.with_suffix(".html"))], capsys)[0] == 0
    assert "Geometry at the last snapshot" not in md_without.read_text()  # no run has been analysed over training
    for run in copies:
        assert run_main(["analyze", str(run)], capsys)[0] == 0
    out = tmp_path / "with.html"
    assert run_main(["compare", *map(str, copies), "--out", str(out)], capsys)[0] == 0
    md = out.with_suffix(".md").read_text()
    for title in ("effective rank", "anisotropy (mean cosine of all pairs)", "Spearman ρ of row norm and token count"):
        assert f"Geometry at the last snapshot: {title}" in md and title in out.read_text()
    section = md.split("Geometry at the last snapshot: effective rank")[1].split("\n## ")[0]
    assert section.count(" / ") >= 8  # learned / init / random for each matrix of both runs
