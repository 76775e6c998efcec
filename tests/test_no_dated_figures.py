"""Measurements live with the benchmark that prints them (``benchmarks/``, its results, the README's
tables made from them), not in the package's docstrings and comments, its ``--help`` or the configs,
where nobody reruns them and they go stale."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHERE = [*ROOT.glob("tiedtransformer/**/*.py"), *ROOT.glob("callbacks/**/*.py"), *ROOT.glob("configs/**/*.yaml")]
DATED = [
    re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b"),  # a date
    re.compile(r"\b\d+(\.\d+)?\s?x (as fast|faster|slower|the)\b"),  # a speed ratio
    re.compile(r"\b\d[\d,.]*\s(target )?tok/s\b"),  # a throughput
    re.compile(r"\b\d+(\.\d+)? ms\b"),  # a timing
    re.compile(r"\b(H100|H200|A100)\b"),  # a machine a figure was measured on
]


def test_no_measured_figure_in_the_package_or_the_configs():
    found = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for path in WHERE
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if any(p.search(line) for p in DATED)
    ]
    assert not found, "measured figures outside benchmarks/:\n" + "\n".join(found)


def test_the_patterns_catch_the_figures_they_are_for():
    for line in ("(2026-11-23)", "1.38x as fast", "5,267 target tok/s", "took 5.6 ms a call", "on an H100"):
        assert any(p.search(line) for p in DATED), line
