import pytest

from tiedtransformer.analysis.verdict import NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, spread, verdict


def test_a_gap_beyond_the_spread_in_the_seeds_direction_against_every_null_is_reproduced():
    v = verdict([0.53, 0.54, 0.52], {"init": [0.26, 0.27, 0.26], "random": [0.27, 0.27, 0.27]}, direction=1)
    assert v.outcome == REPRODUCED and v.threshold == pytest.approx(0.01)
    assert v.gaps["init"] == pytest.approx(0.53 - 0.79 / 3)
    assert v.describe().startswith("threshold 0.0100") and v.describe().endswith(REPRODUCED)


def test_beating_only_one_null_or_neither_is_not_testable():
    # as finding 1b of the 600-step page: differences of 0.005 where two nulls differ by as much
    assert verdict([0.300, 0.306], {"init": [0.297, 0.301], "random": [0.295, 0.300]}, 1).outcome == NOT_TESTABLE
    beats_init_only = verdict([0.60, 0.61], {"init": [0.30, 0.30], "random": [0.605, 0.605]}, 1)
    assert beats_init_only.outcome == NOT_TESTABLE


def test_beating_a_null_the_other_way_is_not_reproduced():
    # as finding 2 of the 600-step page: enc_lut's learned value below its initialisation
    v = verdict([0.585, 0.586], {"init": [0.594, 0.595], "random": [0.27, 0.27]}, direction=1)
    assert v.outcome == NOT_REPRODUCED
    assert verdict([0.1, 0.11], {"init": [0.5, 0.5]}, direction=-1).outcome == REPRODUCED


def test_one_seed_has_no_spread_and_bad_arguments_are_refused():
    assert spread([1.0], [2.0]) is None and spread([1.0, 3.0], [0.0]) == pytest.approx(2**0.5)
    v = verdict([0.9], {"init": [0.1]}, 1)
    assert v.outcome == NOT_TESTABLE and v.threshold is None and "no spread" in v.describe()
    with pytest.raises(ValueError):
        verdict([0.9, 0.8], {"init": [0.1, 0.2]}, 0)
    with pytest.raises(ValueError):
        verdict([0.9, 0.8], {}, 1)


def test_the_resolution_floors_the_threshold_where_the_seeds_agree_exactly():
    # a Jaccard of exactly 0 in every seed against a chance level of 1e-6: no spread, and no difference
    assert verdict([0.0, 0.0], {"chance": [1e-6, 1e-6]}, 1).outcome == NOT_REPRODUCED  # without: any gap counts
    v = verdict([0.0, 0.0], {"chance": [1e-6, 1e-6]}, 1, resolution=1 / 1999)
    assert v.outcome == NOT_TESTABLE and v.threshold == pytest.approx(1 / 1999)
    assert verdict([0.2, 0.2], {"chance": [1e-6, 1e-6]}, 1, resolution=1 / 1999).outcome == REPRODUCED


def test_the_verdict_says_what_set_its_threshold():
    from tiedtransformer.analysis.verdict import verdict

    spread_set = verdict([1.0, 1.1, 1.2], {"null": [0.0, 0.0, 0.0]}, +1, resolution=0.01)
    assert spread_set.basis == "seed-to-seed spread" and "(seed-to-seed spread)" in spread_set.describe()
    floor_set = verdict([1.0, 1.1, 1.2], {"null": [0.0, 0.0, 0.0]}, +1, resolution=0.5)
    assert floor_set.threshold == 0.5 and "resolution" in floor_set.describe()
    named = verdict([1.0, 1.1, 1.2], {"null": [0.0, 0.0, 0.0]}, +1, 0.5, "twice the null's standard error")
    assert "(twice the null's standard error, above the spread)" in named.describe()
