"""tiedtransformer.analysis.settled: consecutive snapshots' top pairs, from dumps or from a kept run's metrics."""

from tests.test_findings import run
from tiedtransformer.analysis.seed_tables import settled_table
from tiedtransformer.analysis.settled import settled_series


def test_the_settled_table_reads_a_kept_runs_metrics_across_resumed_parts():
    """A kept copy has no dumps: the values the callback logged at each snapshot (against the previous one)
    make the table; the value logged against step 0 is left out, as with dumps."""

    runs = [run(1)]
    key, snap = "emb/dec_lut/settled_top1000", "emb/dec_lut/mean_top1000"
    runs[0]["metrics"] = [
        {"step": "1", snap: "0.26", key: ""},  # the step-0 snapshot
        {"step": "50", "train/loss": "3.0"},  # not a snapshot
        {"step": "250", snap: "0.3", key: "0.1"},  # against step 0: not counted
        {"step": "500", snap: "0.4", key: "0.6"},
        {"step": "750", snap: "0.45", key: "0.8"},  # a resumed part's rows follow
        {"step": "1000", snap: "0.46", key: "0.9"},
    ]
    assert settled_series(runs[0], "dec_lut") == [(500, 250, 0.6), (750, 500, 0.8), (1000, 750, 0.9)]
    row = settled_table(runs)["rows"][0]
    assert row[2 + 3] == "0.80 / 0.90" and row[2] == "–"  # dec_lut is the fourth matrix; enc_embed has none


def test_from_dumps_the_pairs_after_step_0_are_compared():
    both, one = {"dec_lut": {("a", "b"), ("c", "d")}}, {"dec_lut": {("a", "b")}}
    r = {"top_pairs_by_step": [(0, one), (100, both), (200, one)]}
    assert settled_series(r, "dec_lut") == [(200, 100, 0.5)] and settled_series(r, "enc_lut") == []
