"""tiedtransformer.analysis.model_findings: BLEU, Press & Wolf and every finding together, from synthetic runs
whose answer is known."""

import copy

from tests.test_findings import outcomes, run
from tiedtransformer.analysis.model_findings import (
    bleu_findings,
    independent_pairs,
    press_wolf_dynamics,
    seed_findings,
)
from tiedtransformer.analysis.verdict import NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED


def test_bleu_cost_by_seed_pairs_and_its_mirror():
    runs = [run(s, bleu=36.0 + 0.2 * s) for s in (1, 2, 3)]
    runs += [run(s, tying="three_way", bleu=34.0 + 0.2 * s) for s in (1, 2, 3)]
    found = {f.key: f for f in bleu_findings(runs, {"en-de-three_way-1": 0.001})}
    assert found["3-en-de"].result.outcome == REPRODUCED and found["6-en-de"].result.outcome == NOT_REPRODUCED
    assert "lower in 1, and higher in 0, of 3 pairs of runs" in found["3-en-de"].detail  # one p given, below 0.05
    one = [run(1, bleu=36.0), run(1, tying="three_way", bleu=30.0)]
    assert outcomes(bleu_findings(one, {}))["3-en-de"] == NOT_TESTABLE  # one seed: no spread


def cross(seed_a, seed_b, start, end):
    def step(s, lut, emb):
        return {"step": s, "dec_lut": {"cka": lut}, "dec_embed": {"cka": emb}}

    return {
        "direction": "en-de",
        "tying": "decoder",
        "seed_a": seed_a,
        "seed_b": seed_b,
        "steps": [step(0, *start), step(3000, *end)],
    }


def test_press_wolf_as_dynamics_counts_pairs_of_runs_of_different_seeds_only():
    pairs = [cross(1, 2, (0.1, 0.1), (0.6, 0.2)), cross(2, 1, (0.1, 0.11), (0.55, 0.25)), cross(1, 1, (1, 0), (1, 0))]
    (f,) = press_wolf_dynamics(pairs)
    assert f.result.outcome == REPRODUCED and "in 2 of 2 pairs of runs" in f.detail
    assert press_wolf_dynamics([cross(1, 1, (1, 0), (1, 0))]) == []  # one seed: the shared start explains it


def full_cross(seed_a, seed_b, lut_end, embed_end, lut_chance=0.05):
    """A pair with every measure: at step 0 both matrices at the same value (0.05); at the last step the given
    values, with chance levels (the dec_lut one given; dec_embed's 0.05)."""
    measures = ("cka", "procrustes", "jaccard_top_pairs", "jaccard_knn", "spearman")

    def cell(x, chance=0.05):
        return {m: x for m in measures} | {f"{m}_chance": chance for m in measures}

    steps = [
        {"step": 0, "dec_lut": cell(0.05, 0.9), "dec_embed": cell(0.05, 0.1)},  # step 0's chance is not read
        {"step": 3000, "dec_lut": cell(lut_end, lut_chance), "dec_embed": cell(embed_end)},
    ]
    return {"direction": "en-de", "tying": "decoder", "seed_a": seed_a, "seed_b": seed_b, "steps": steps}


def test_press_wolf_by_every_measure_with_the_residual_lower_when_alike():
    # dec_lut 0.4 against dec_embed 0.2 in three pairs: more alike by CKA, Jaccard and Spearman (higher), less
    # alike by the Procrustes residual (lower is more alike)
    pairs = [full_cross(1, 2, 0.40, 0.20), full_cross(2, 3, 0.41, 0.20), full_cross(3, 1, 0.39, 0.21)]
    found = {f.key: f for f in press_wolf_dynamics(pairs)}
    assert sorted(found) == ["4-en-de", "4b-en-de", "4c-en-de", "4d-en-de", "4e-en-de"]
    assert {k: f.result.outcome for k, f in found.items() if k != "4b-en-de"} == dict.fromkeys(
        ["4-en-de", "4c-en-de", "4d-en-de", "4e-en-de"], REPRODUCED
    )
    assert found["4b-en-de"].result.outcome == NOT_REPRODUCED and "below step 0 in 0 of 3" in found["4b-en-de"].detail
    assert set(found["4-en-de"].result.gaps) == {"step 0", "chance"}
    learned = (0.40 - 0.20 + 0.41 - 0.20 + 0.39 - 0.21) / 3
    assert round(found["4-en-de"].result.gaps["chance"], 6) == round(learned - 0.0, 6)  # the last step's levels
    # a chance level of dec_lut as high as its learned value: the chance null explains the difference
    explained = [full_cross(s, s % 3 + 1, 0.40 + 0.01 * s, 0.20, lut_chance=0.25 + 0.01 * s) for s in (1, 2, 3)]
    assert {f.result.outcome for f in press_wolf_dynamics(explained) if f.key == "4-en-de"} == {NOT_TESTABLE}
    # no chance levels: the step-0 null alone, and the text does not name the chance levels
    bare = copy.deepcopy(pairs)
    for c in bare:
        for step in c["steps"]:
            for m in ("dec_lut", "dec_embed"):
                step[m] = {k: v for k, v in step[m].items() if not k.endswith("_chance")}
    (only,) = [f for f in press_wolf_dynamics(bare) if f.key == "4-en-de"]
    assert set(only.result.gaps) == {"step 0"} and "chance" not in only.measure
    # the measures a pair lacks give no finding (the grid's own dumps held CKA only)
    assert [f.key for f in press_wolf_dynamics([cross(1, 2, (0.1, 0.1), (0.6, 0.2))])] == ["4-en-de"]
    # inside the spread: not testable
    noisy = [full_cross(1, 2, 0.40, 0.20), full_cross(2, 3, 0.10, 0.30), full_cross(3, 1, 0.25, 0.20)]
    assert {f.result.outcome for f in press_wolf_dynamics(noisy)} == {NOT_TESTABLE}


def test_independent_pairs_use_each_run_once():
    all_pairs = [cross(a, b, (0, 0), (0, 0)) for a in (1, 2, 3) for b in (1, 2, 3) if a != b]
    chosen = [(c["seed_a"], c["seed_b"]) for c in independent_pairs(all_pairs)]
    assert chosen == [(1, 2), (2, 3), (3, 1)]
    two = [
        (c["seed_a"], c["seed_b"])
        for c in independent_pairs([cross(1, 2, (0, 0), (0, 0)), cross(2, 1, (0, 0), (0, 0))])
    ]
    assert two == [(1, 2), (2, 1)]


def test_every_finding_from_one_grid():
    runs = [run(s, tying=t, direction=d) for s in (1, 2) for t in ("none", "three_way") for d in ("en-de", "de-en")]
    keys = outcomes(seed_findings(runs, {}, [])).keys()
    assert {"0-en-de-dec_lut", "1b-de-en", "2a-en-de", "3-de-en", "6-en-de"} <= set(keys)


def _with_simlex(r, out_rho, in_rho, random_out, random_in):
    r["similarity"].intrinsic = {
        "dec_lut": {"simlex999": {"spearman": out_rho}, "random": {"simlex999": random_out}},
        "dec_embed": {"simlex999": {"spearman": in_rho}, "random": {"simlex999": random_in}},
    }
    return r


def test_simlex_beats_two_random_matrices_only_by_more_than_the_spread():
    from tiedtransformer.analysis.model_findings import simlex_findings

    clear = [_with_simlex(run(s, direction="de-en"), 0.20 + 0.005 * s, 0.10, 0.01, -0.01) for s in (1, 2, 3)]
    (f,) = simlex_findings(clear)
    assert f.result.outcome == REPRODUCED and "random matrices 0.020" in f.detail
    # the same learned difference, but two random matrices differ as much: no finding
    noisy = [_with_simlex(run(s, direction="de-en"), 0.20 + 0.005 * s, 0.10, 0.11, 0.0) for s in (1, 2, 3)]
    (f,) = simlex_findings(noisy)
    assert f.result.outcome == NOT_TESTABLE


def test_simlex_without_a_random_null_says_so():
    from tiedtransformer.analysis.model_findings import simlex_findings

    runs = [_with_simlex(run(s, direction="de-en"), 0.2, 0.1, 0.0, 0.0) for s in (1, 2, 3)]
    for r in runs:
        for m in r["similarity"].intrinsic.values():
            del m["random"]
    (f,) = simlex_findings(runs)
    assert "has no random null" in f.measure


def test_simlex_is_not_testable_when_the_random_nulls_spread_covers_the_difference():
    from tiedtransformer.analysis.model_findings import simlex_findings

    runs = [_with_simlex(run(s, direction="de-en"), 0.20 + 0.005 * s, 0.10, 0.0, 0.0) for s in (1, 2, 3)]
    (f,) = simlex_findings(runs)
    assert f.result.outcome == REPRODUCED  # no spread known for the null: the seeds' spread decides
    for r in runs:  # random matrices whose rho strays by 0.1 from one draw to the next
        for m in r["similarity"].intrinsic.values():
            m["random"]["simlex999_sd"] = 0.1
    (f,) = simlex_findings(runs)
    assert f.result.outcome == NOT_TESTABLE and f.result.threshold > 0.1  # 2 * sqrt(0.02) / sqrt(3) = 0.163


def test_simlex_is_held_against_its_own_step_0_when_every_run_has_it():
    import copy

    from tiedtransformer.analysis.model_findings import simlex_findings

    runs = [_with_simlex(run(s, direction="de-en"), 0.20 + 0.005 * s, 0.10, 0.0, 0.0) for s in (1, 2, 3)]
    (f,) = simlex_findings(runs)
    assert f.result.outcome == REPRODUCED and "at step 0" not in f.measure
    # the same difference was there at initialisation: training added nothing, whatever the random null says
    for r in runs:
        r["similarity_init"] = copy.deepcopy(r["similarity"])
    (f,) = simlex_findings(runs)
    assert "at step 0" in f.measure and "; at step 0 0.105" in f.detail
    assert f.result.outcome == NOT_TESTABLE
    # a step-0 difference well below the learned one: the finding stands against all three nulls
    for r in runs:
        r["similarity_init"].intrinsic["dec_lut"]["simlex999"]["spearman"] = 0.10
    (f,) = simlex_findings(runs)
    assert f.result.outcome == REPRODUCED
    # one run without its step-0 report: the null is left out rather than compared over fewer runs
    runs[0]["similarity_init"] = None
    (f,) = simlex_findings(runs)
    assert "at step 0" not in f.measure and "(3 runs)" in f.detail
