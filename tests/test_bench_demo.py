"""benchmarks/demo.py: a demo fit in a subprocess, with a cache of its own when asked for one."""

from pathlib import Path

import pytest

from benchmarks.demo import demo_fit
from tests.conftest import TINY_FIT


@pytest.mark.slow
def test_a_demo_fit_returns_its_summary_and_trains_its_vocabulary_in_the_cache_given(tmp_path):
    options = [o for o in TINY_FIT if not o.startswith("--data.source")]  # the demo config's own source
    summary = demo_fit(tmp_path, "one", *options, cache=tmp_path / "cache")
    assert summary.status == "finished" and summary.final_val_bleu is not None
    assert Path(summary.run_dir) == tmp_path / "one"
    assert list((tmp_path / "cache").rglob("*.model"))  # a fresh machine's cache: the vocabulary was trained
