"""tiedtransformer.analysis.headline: the cost of tying per group, its interval, deltas and significance."""

import pytest

from tiedtransformer.run.summary import FitSummary


def fake(tying, seed, bleu, params, direction="en-de", ci=None, name=None):
    s = FitSummary(
        tying=tying, direction=direction, seed=seed, final_test_bleu=bleu, final_test_bleu_ci=ci, unique_params=params
    )
    return {"name": name or f"{direction}-{tying}-{seed}", "seed": seed, "summary": s, "metrics": []}


def test_t975_is_students_quantile():
    from tiedtransformer.analysis.headline import t975

    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 5, 10, 30, 31, 60, 200, 10_000):
        assert t975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=1e-3)
    with pytest.raises(ValueError):
        t975(0)


def test_the_headline_is_a_mean_with_a_t_interval_over_seeds_and_deltas_against_untied():
    from tiedtransformer.analysis.headline import headline, headline_metric, headline_table, t975

    runs = [fake("none", s, b, 10_000_000) for s, b in ((1, 30.0), (2, 31.0), (3, 32.0))]
    runs += [fake("three_way", s, b, 8_000_000) for s, b in ((1, 29.0), (2, 29.5), (3, 30.0))]
    rows = [{"directory": r["name"], "test_bleu_p": None if r["summary"].tying == "none" else 0.01} for r in runs]
    assert headline_metric(runs) == ("final_test_bleu", "test BLEU")
    none, tied = headline(runs, rows)
    assert (none["tying"], none["runs"], none["bleu"]) == ("none", 3, 31.0)
    half = t975(2) * 1.0 / 3**0.5  # sd of 30, 31, 32 is 1
    assert none["interval"] == pytest.approx((31.0 - half, 31.0 + half))
    assert none["params_delta_pct"] == 0 and none["bleu_delta"] == 0 and not none["significant"]
    assert tied["params_delta_pct"] == pytest.approx(-20.0) and tied["bleu_delta"] == pytest.approx(-1.5)
    assert tied["p"] == [0.01] * 3 and tied["significant"]
    rows[3]["test_bleu_p"] = None  # one seed without a test: not "p < 0.05 for every seed"
    none, tied = headline(runs, rows)
    assert tied["p"] == [None, 0.01, 0.01] and not tied["significant"]
    assert headline_table([none, tied], "test BLEU")["rows"][1][6] == ("– / 0.01 / 0.01", 0.01)
    rows[3]["test_bleu_p"] = 0.01
    table_ = headline_table([none, tied], "test BLEU")
    assert table_["header"][3:6] == ["Δ params (%)", "test BLEU ± 95%", "Δ test BLEU"]
    cells = [text for text, _ in table_["rows"][1]]
    assert cells[3] == "-20.0" and cells[4] == f"29.50 ± {t975(2) * 0.5 / 3**0.5:.2f}" and cells[5] == "-1.50"


def test_a_single_run_shows_its_bootstrap_interval_and_a_missing_test_falls_back_to_val():
    from tiedtransformer.analysis.headline import headline, headline_metric

    one = [fake("none", 1, 30.0, 10, ci=0.8)]
    (g,) = headline(one, [{"directory": one[0]["name"], "test_bleu_p": None}])
    assert g["interval"] == pytest.approx((29.2, 30.8))
    no_test = [fake("none", 1, None, 10)]
    no_test[0]["summary"].final_val_bleu = 25.0
    assert headline_metric(no_test) == ("final_val_bleu", "final val BLEU")
    (g,) = headline(no_test, [{"directory": no_test[0]["name"], "test_bleu_p": None}])
    assert g["bleu"] == 25.0 and g["interval"] is None  # no interval invented for one run without a bootstrap
