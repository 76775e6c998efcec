"""docs/make_results.py: the cross-run entries a partial rerun recomputes, and the table made of them."""

from tests.conftest import docs_script


def make_results():
    return docs_script("make_results")


def entry(a: str, b: str, seed_a: int, seed_b: int, full: bool, value: float = 0.5) -> dict:
    measures = ("cka", "procrustes", "jaccard_top_pairs", "jaccard_knn", "spearman") if full else ("cka",)

    def cell(x):
        return {m: x for m in measures} | {f"{m}_chance": 0.01 for m in measures} | {"tokens": 100}

    steps = [{"step": s, "dec_lut": cell(x), "dec_embed": cell(x / 2)} for s, x in ((0, 0.1), (3000, value))]
    return {
        "direction": "en-de",
        "tying": "decoder",
        "seed_a": seed_a,
        "seed_b": seed_b,
        "run_a": a,
        "run_b": b,
        "steps": steps,
    }


def test_a_partial_rerun_replaces_its_own_pairs_and_keeps_the_others():
    mr = make_results()
    old = [entry("d1", "n2", 1, 2, False, 0.3), entry("d2", "n3", 2, 3, False, 0.4)]
    merged = mr.merged_cross(old, [entry("d1", "n2", 1, 2, True, 0.3)])
    assert [(c["run_a"], "procrustes" in c["steps"][-1]["dec_lut"]) for c in merged] == [("d1", True), ("d2", False)]
    assert mr.merged_cross(old, []) == old


def test_the_across_runs_table_holds_the_pairs_with_every_measure_and_the_reruns_bleu():
    mr = make_results()
    runs = [{"name": "d1", "label": "en-de · decoder · seed 1", "val_bleu": [36.05, 36.22], "test_bleu": [30.3, 30.5]}]
    reruns = {"pairs": [entry("d1", "n2", 1, 2, True, 0.25), entry("d2", "n3", 2, 3, False)], "runs": runs}
    table = "\n".join(mr.across_runs_table(reruns))
    assert "| en-de | decoder | 1 vs 2 | dec_lut | 0.250 / 0.100 / 0.010 |" in table  # last / step 0 / chance
    assert "| 2 vs 3 |" not in table and table.count("\n| en-de |") == 2  # dec_lut and dec_embed of one pair
    assert "en-de · decoder · seed 1: validation BLEU 36.05 in the grid, 36.22 again" in table
    assert mr.across_runs_table({"pairs": [entry("d2", "n3", 2, 3, False)], "runs": []}) == []
    assert mr.across_runs_table({}) == []
