import csv
import os
import shutil
import subprocess

import pytest

from tests.test_cli import run_main
from tests.test_headline import fake
from tiedtransformer.analysis import schema
from tiedtransformer.analysis.compare import load_run, table
from tiedtransformer.errors import ConfigError


@pytest.fixture
def two_runs(tiny_sweep_runs):
    """A local sweep of two demo runs: tying none and three_way (run once per session)."""
    return tiny_sweep_runs[0]


@pytest.mark.slow
def test_table_has_deltas_against_the_untied_run(two_runs):
    rows = {r["tying"]: r for r in table([load_run(d) for d in two_runs])}
    assert rows["none"]["params_delta_pct"] == 0.0 and rows["none"]["bleu_delta"] == 0.0
    tied, untied = rows["three_way"], rows["none"]
    expected = 100 * (tied["unique_params"] - untied["unique_params"]) / untied["unique_params"]
    assert tied["params_delta_pct"] == pytest.approx(expected) and tied["params_delta_pct"] < 0
    assert tied["speed_delta_pct"] is not None and tied["wall_s"] > 0


@pytest.mark.slow
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
    assert "| run | tying | direction | unique params (M) | Δ params (%) |" in md  # headers in words and units
    for d in two_runs:  # a run is named by what it is; its directory only in its own column
        label = {"none": "en-de · none · seed 0", "three_way": "en-de · three_way · seed 0"}
        row = next(r for r in rows if r["directory"] == d.name)
        assert row["run"] == label[row["tying"]] and f"| {row['run']} |" in md and d.name in md
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


@pytest.mark.slow
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


@pytest.mark.slow
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
    assert '<table class="runs sortable">' in dom
    # the seed's tables: one per statistic of the schema beside seven others (cost, two Jaccard, between, human
    # similarity, settled, top pairs)
    assert (
        dom.count('<table class="seed sortable">') == 7 + len(schema.STATISTICS)
        and "What tying costs, across seeds" in dom
    )
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
    top = img.crop((0, 0, 1400, 250))  # the title and the headline: dark text on white, many distinct rows of pixels
    figures = img.crop((0, 250, 1400, 1000))  # the headline figure and the curves
    for region in (top, figures):
        hist = region.histogram()
        assert hist[255] < 0.98 * sum(hist), "region is blank"
        assert sum(1 for v in hist if v) > 20, "region has no detail"


@pytest.mark.slow
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


def test_runs_that_share_a_label_are_told_apart_by_what_differs():
    from tiedtransformer.analysis.compare import label_runs

    runs = [fake("none", 1, 30.0, 10, name="a1b2c3"), fake("none", 1, 31.0, 10, name="d4e5f6")]
    runs[0]["settings"], runs[1]["settings"] = {"model.optim.lr": 0.001}, {"model.optim.lr": 0.002}
    label_runs(runs)
    assert [r["label"] for r in runs] == ["en-de · none · seed 1 · lr=0.001", "en-de · none · seed 1 · lr=0.002"]


def _dom(page, profile, *flags) -> str:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


@pytest.mark.slow
def test_the_first_screen_at_1280_by_800_answers_without_scrolling_sideways(two_runs, tmp_path, capsys):
    import dataclasses
    import re

    from tiedtransformer.analysis.compare import COLUMNS
    from tiedtransformer.run.summary import FitSummary

    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but no chromium: the comparison page cannot be checked (see .ci/run)")
        pytest.skip("no chromium installed (Debian: apt-get update && apt-get install chromium)")
    out = tmp_path / "cmp" / "report.html"
    assert run_main(["compare", *map(str, two_runs), "--out", str(out)], capsys)[0] == 0
    # the tables sit in boxes that scroll sideways on their own: the page's width alone would not see a table
    # that overflows its box, so each box of the first screen and the run table (secondary columns folded) is read
    measure = """<script>window.addEventListener("load", () => {
      const boxes = [...document.querySelectorAll("#headline .wrap"), document.querySelector("table.runs").parentElement];
      document.body.setAttribute("data-boxes", boxes.map((b) => b.scrollWidth + "/" + b.clientWidth).join(","));
    });</script></body>"""
    measured = out.with_name("measured.html")
    measured.write_text(out.read_text().replace("</body>", measure))
    boxes = re.search(r'data-boxes="([\d/,]+)"', _dom(measured, tmp_path / "u0", "--window-size=1280,800")).group(1)
    assert len(boxes.split(",")) == 2
    for box in boxes.split(","):
        inner, outer = map(int, box.split("/"))
        assert 0 < inner <= outer, f"a table scrolls inside its box at 1280 px ({inner} > {outer} px)"
    dom = _dom(out, tmp_path / "u1", "--window-size=1280,800")
    assert 'data-images-ok="true"' in dom
    width = int(re.search(r'data-scroll-width="(\d+)"', dom).group(1))
    assert width <= 1280, f"the page scrolls sideways at 1280 px ({width} px wide)"
    left, top, right, bottom = map(int, re.search(r'data-headline-box="([-\d,]+)"', dom).group(1).split(","))
    assert 0 <= left and right <= 1280 and bottom <= 800, "the headline figure and table are not on the first screen"
    head = dom.split('id="headline"')[1].split("</table>")[0]
    assert 'alt="BLEU against unique parameters"' in head and "Δ params (%)" in head and "p per seed" in head
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", dom)
    fields = set(COLUMNS) | {f.name for f in dataclasses.fields(FitSummary)} | {s.scalar for s in schema.STATISTICS}
    raw = [h for h in headers if h in fields - {"run", "tying", "direction", "seed", "epochs"}]
    assert headers and not raw, f"raw field names as headers: {raw}"
    for d in two_runs:  # a directory name only as a tooltip or link, never as a run's visible label
        assert f">{d.name}<" not in dom and f'title="{d.name}"' in dom
    assert "en-de · three_way · seed 0" in dom
    # every per-run section is folded and links to that run's own files, by relative paths that resolve
    assert dom.count("<details>") == len(two_runs)
    hrefs = re.findall(r'<a href="([^"]+)"', dom)
    assert any(h.endswith("report.md") for h in hrefs)
    for h in hrefs:
        assert (out.parent / h).exists(), h


@pytest.mark.slow
def test_a_click_on_a_header_sorts_the_run_table(two_runs, tmp_path, capsys):
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but no chromium: the comparison page cannot be checked (see .ci/run)")
        pytest.skip("no chromium installed (Debian: apt-get update && apt-get install chromium)")
    out = tmp_path / "report.html"
    assert run_main(["compare", *map(str, two_runs), "--out", str(out)], capsys)[0] == 0
    click = """<script>window.addEventListener("load", () => {
      const th = [...document.querySelectorAll("table.runs th")].find((h) => h.textContent === "Δ params (%)");
      const order = () => [...document.querySelectorAll("table.runs tbody tr")].map((r) => r.cells[0].textContent);
      th.click(); const up = order().join("|"); th.click(); const down = order().join("|");
      document.body.setAttribute("data-up", up); document.body.setAttribute("data-down", down);
    });</script></body>"""
    page = out.with_name("clicked.html")
    page.write_text(out.read_text().replace("</body>", click))
    dom = _dom(page, tmp_path / "u1")
    import html
    import re

    up = html.unescape(re.search(r'data-up="([^"]*)"', dom).group(1)).split("|")
    down = html.unescape(re.search(r'data-down="([^"]*)"', dom).group(1)).split("|")
    # three_way has fewer parameters (a negative Δ): first ascending, last descending
    assert up == ["en-de · three_way · seed 0", "en-de · none · seed 0"] and down == up[::-1]
