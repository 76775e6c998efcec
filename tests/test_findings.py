"""tiedtransformer.analysis.findings: each finding from synthetic runs whose answer is known."""

from tiedtransformer.analysis.dumps import MATRIX_NAMES
from tiedtransformer.analysis.findings import (
    jaccard_findings,
    structure_learned,
    top_and_kind_findings,
)
from tiedtransformer.analysis.schema import DumpAnalysis
from tiedtransformer.analysis.verdict import NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED
from tiedtransformer.run.summary import FitSummary

KINDS = {"pieces": 0.25, "case": 0.25, "inflection": 0.25, "other": 0.25}


def matrix(mean_top, mean_bottom=-0.3, kinds=None, init_top=0.27, init_kinds=None):
    return {
        "mean_top": mean_top,
        "mean_bottom": mean_bottom,
        "kinds": kinds or KINDS,
        "nulls": {
            "init": {"mean_top": init_top, "mean_bottom": -0.27, "kinds": init_kinds or KINDS},
            "random": {"mean_top": 0.27, "mean_bottom": -0.27, "kinds": KINDS},
        },
    }


def run(seed, tying="none", direction="en-de", bleu=30.0, top=None, jaccard_dec_lut=0.0, wobble=0.0, kinds=None):
    top = top or {name: 0.45 for name in MATRIX_NAMES}
    jac = {a: {b: (1.0 if a == b else 0.0) for b in MATRIX_NAMES} for a in MATRIX_NAMES}
    for x in MATRIX_NAMES[:3]:
        jac["dec_lut"][x] = jac[x]["dec_lut"] = jaccard_dec_lut
    chance = {a: {b: 0.002 for b in MATRIX_NAMES} for a in MATRIX_NAMES}
    trajectory = {
        "nulls": {
            n: {"init": {"effective_rank": 190.0}, "random": {"effective_rank": 190.0 + wobble}} for n in MATRIX_NAMES
        },
        "snapshots": [
            {"step": 0, "matrices": {n: {"effective_rank": 190.0} for n in MATRIX_NAMES}, "pairs": {}},
            {"step": 3000, "matrices": {n: {"effective_rank": 150.0 + 3 * seed} for n in MATRIX_NAMES}, "pairs": {}},
        ],
    }
    return {
        "name": f"{direction}-{tying}-{seed}",
        "seed": seed,
        "summary": FitSummary(tying=tying, direction=direction, final_test_bleu=bleu),
        "similarity": DumpAnalysis.from_json(
            {
                "top_k": 1000,
                "matrices": {n: matrix(top[n] + 0.01 * seed, kinds=(kinds or {}).get(n)) for n in MATRIX_NAMES},
                "jaccard_top_pairs": jac,
                "chance_jaccard_top_pairs": chance,
            }
        ),
        "trajectory": trajectory,
    }


def outcomes(found):
    return {f.key: f.result.outcome for f in found}


def test_structure_beyond_both_nulls_is_reproduced_and_a_matrix_at_its_start_is_not_testable():
    top = {"enc_embed": 0.255, "enc_lut": 0.5, "dec_embed": 0.5, "dec_lut": 0.5}
    runs = [run(s, top=top) for s in (1, 2, 3)]
    got = outcomes(structure_learned(runs, "en-de"))
    assert got["0-en-de-dec_lut"] == REPRODUCED
    assert got["0-en-de-enc_embed"] == NOT_TESTABLE  # 0.265-0.285 against 0.27: inside the spread (0.01)
    assert structure_learned(runs, "de-en") == []  # no runs of that direction: no finding


def test_a_claim_of_no_overlap_is_not_reproduced_when_the_overlap_beats_chance_and_never_reproduced():
    shared = [run(s, jaccard_dec_lut=0.04 + 0.001 * s) for s in (1, 2, 3)]
    assert outcomes(jaccard_findings(shared, "en-de"))["1b-en-de"] == NOT_REPRODUCED
    none = [run(s, jaccard_dec_lut=0.002 + 0.001 * (s - 2)) for s in (1, 2, 3)]
    assert outcomes(jaccard_findings(none, "en-de"))["1b-en-de"] == NOT_TESTABLE


def test_pair_kinds_against_their_nulls():
    learned = {"dec_embed": {"pieces": 0.1, "case": 0.0, "inflection": 0.6, "other": 0.3}}
    runs = [run(s, kinds=learned) for s in (1, 2, 3)]
    for r, wobble in zip(runs, (0.0, 0.02, -0.02)):
        r["similarity"].matrices["dec_embed"].kinds = {**learned["dec_embed"], "inflection": 0.6 + wobble}
    got = outcomes(top_and_kind_findings(runs, "en-de"))
    assert got["2c-en-de"] == REPRODUCED  # 0.6 against 0.25 at init and for random pairs
    assert got["2b-en-de"] == NOT_TESTABLE  # enc_lut's pieces: at their nulls
