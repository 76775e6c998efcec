"""tiedtransformer.analysis.seed_tables: the geometry rows with their nulls and verdicts."""

import pytest

from tests.test_findings import run
from tiedtransformer.analysis.seed_tables import geometry_rows
from tiedtransformer.analysis.verdict import NOT_TESTABLE, REPRODUCED


def test_geometry_rows_mark_what_beats_both_nulls():
    moved = [run(s) for s in (1, 2, 3)]
    still = [run(s, tying="three_way") for s in (1, 2, 3)]
    for r in still:  # the last snapshot at its start, give or take
        for m in r["trajectory"]["snapshots"][-1]["matrices"].values():
            m["effective_rank"] = 190.0 + r["seed"] - 2
    rows = geometry_rows(moved + still)
    by_mode = {t: [r for r in rows if r["tying"] == t] for t in ("none", "three_way")}
    assert all(r["verdict"].outcome == REPRODUCED for r in by_mode["none"])  # 153-159 against 190
    assert all(r["verdict"].outcome == NOT_TESTABLE for r in by_mode["three_way"])
    assert by_mode["none"][0]["learned"] == pytest.approx([153.0, 156.0, 159.0])


def test_a_groups_runs_are_in_seed_order_whatever_their_directory_names():
    from tiedtransformer.analysis.seed_tables import groups

    runs = [run(s) for s in (2, 3, 1)]
    for r, name in zip(runs, ("run-a", "run-b", "run-c")):  # directory names in another order than the seeds
        r["name"] = name
    assert [r["seed"] for r in groups(runs)[("en-de", "none")]] == [1, 2, 3]
