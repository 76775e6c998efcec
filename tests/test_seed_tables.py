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


def test_the_cost_table_shows_each_seeds_p_value_of_the_run_table():
    from tiedtransformer.analysis.seed_tables import cost_table

    runs = [run(s) for s in (1, 2)] + [run(s, tying="three_way") for s in (1, 2)]
    for r in runs:
        r["name"], r["label"] = (
            f"dir-{r['summary'].tying}-{r['seed']}",
            f"en-de · {r['summary'].tying} · seed {r['seed']}",
        )
    rows = [  # the run table names a run by its label and keeps its directory apart
        {
            "run": r["label"],
            "directory": r["name"],
            "test_bleu_p": 0.003 * r["seed"] if r["summary"].tying != "none" else None,
        }
        for r in runs
    ]
    table = cost_table(runs, rows)
    p_col = table["header"].index(next(h for h in table["header"] if h.startswith("p")))
    tied = next(row for row in table["rows"] if row[1] == "three_way")
    assert tied[p_col] == "0.003 / 0.006"


def test_an_empty_settled_table_says_why():
    from tiedtransformer.analysis.seed_tables import settled_table

    runs = [run(1)]
    assert "Empty here" in settled_table(runs)["note"]
    both, one = {"enc_embed": {("a", "b"), ("c", "d")}}, {"enc_embed": {("a", "b")}}
    runs[0]["top_pairs_by_step"] = [(0, both), (100, both), (200, one), (300, both), (400, one)]
    table = settled_table(runs)  # consecutive: 100->200 0.5, 200->300 0.5, 300->400 0.5; the middle is 200->300
    assert "Empty here" not in table["note"] and table["rows"][0][2] == "0.50 / 0.50"
    assert "step 200 with 300, and step 300 with 400" in table["note"]


def test_the_between_table_averages_cka_and_procrustes_over_a_groups_runs_with_chance():
    from tiedtransformer.analysis.seed_tables import between_table

    runs = [run(s) for s in (1, 2)]
    for r, cka in zip(runs, (0.6, 0.8)):
        r["trajectory"]["snapshots"][-1]["pairs"] = {
            "enc_embed|enc_lut": {"cka": cka, "procrustes": 0.3, "cka_chance": 0.03, "procrustes_chance": 1.6}
        }
    table = between_table(runs)
    col = table["header"].index("enc_embed ~ enc_lut")
    assert table["rows"][0][col] == "0.70 / 0.30 (chance 0.03 / 1.60)"
    assert table["rows"][0][table["header"].index("dec_embed ~ dec_lut")] == "–"  # not measured: no number


def test_the_knn_jaccard_table_reads_its_own_keys_and_chance():
    from tiedtransformer.analysis.seed_tables import jaccard_table

    runs = [run(1)]
    sim = runs[0]["similarity"]
    sim.knn_k = 10
    sim.jaccard_knn = {a: {b: 0.25 for b in sim.jaccard_top_pairs} for a in sim.jaccard_top_pairs}
    sim.chance_jaccard_knn = {a: {b: 0.0019 for b in sim.jaccard_top_pairs} for a in sim.jaccard_top_pairs}
    table = jaccard_table(runs, "knn")
    assert table["title"] == "Jaccard overlap of the 10 nearest neighbours between matrices"
    assert "at most 0.00190" in table["note"] and table["rows"][0][3:] == ["0.25"] * 4
    assert jaccard_table(runs)["rows"][0][3] == "1.00"  # the top pairs' table is unchanged
