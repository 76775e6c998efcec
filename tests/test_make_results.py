"""docs/make_results.py: the cross-run entries a partial rerun recomputes, and the table made of them."""

from tests.conftest import docs_script
from tiedtransformer.run.files import RunDir


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


def test_the_across_runs_table_holds_the_pairs_with_every_measure():
    mr = make_results()
    table = "\n".join(
        mr.across_runs_table([entry("d1", "n2", 1, 2, True, 0.25), entry("d2", "n3", 2, 3, False)], {"d1", "d2"})
    )
    assert "| en-de | decoder | 1 vs 2 | dec_lut | 0.250 / 0.100 / 0.010 |" in table  # last / step 0 / chance
    assert "| 2 vs 3 |" not in table and table.count("\n| en-de |") == 2  # dec_lut and dec_embed of one pair
    assert "of the 2 runs in these pairs, 1 have a kept rerun that is the same training" in table  # d1, not n2
    assert mr.across_runs_table([entry("d2", "n3", 2, 3, False)], set()) == []
    assert mr.across_runs_table([], set()) == []


def finding(key: str, outcome: str):
    from types import SimpleNamespace

    return SimpleNamespace(key=key, result=SimpleNamespace(outcome=outcome, threshold=None, gaps={}))


def test_the_summary_says_where_cka_and_the_other_measures_disagree():
    mr = make_results()
    found = [
        finding("4-en-de", "not reproduced"),
        finding("4b-en-de", "reproduced"),
        finding("4-de-en", "not reproduced"),
    ]
    (line,) = [x for x in mr.summary_lines(found) if x.startswith("Press & Wolf")]
    assert "(4b-4e: the same pairs of runs seen otherwise, not replications): reproduced (4b-en-de)" in line
    assert "(CKA and the other measures disagree: en-de)" in line  # de-en has no 4b-4e: nothing to disagree with
    agree = [finding("4-en-de", "reproduced"), finding("4b-en-de", "reproduced")]
    (line,) = [x for x in mr.summary_lines(agree) if x.startswith("Press & Wolf")]
    assert "disagree" not in line
    (line,) = [x for x in mr.summary_lines([finding("4-en-de", "reproduced")]) if x.startswith("Press & Wolf")]
    assert "(4b-4e: the same pairs of runs seen otherwise, not replications): not measured" in line


def fake_run(tmp_path, name: str, losses: dict[int, float], resumed: dict[int, float] | None = None, **summary):
    """A run directory with its training losses logged (metrics.csv, and a resumed part's) and its summary."""
    from tiedtransformer.run.summary import FitSummary

    d = tmp_path / name
    parts = [(d, losses)] + ([(d / "resume-1", resumed)] if resumed else [])
    for where, logged in parts:
        where.mkdir(parents=True)
        rows = "".join(f"{step},{loss!r},\n" for step, loss in logged.items())
        (where / "metrics.csv").write_text("step,train/loss,val/loss\n" + rows + "99,,2.5\n")
    fields = dict(final_val_loss=2.5, final_val_bleu=36.0, train_tokens=1000, global_step=99) | summary
    return {"name": name, "dir": d, "summary": FitSummary(**fields)}


def test_a_run_trained_again_is_the_kept_run_only_when_its_training_is(tmp_path):
    mr = make_results()
    losses = {19: 7.5, 39: 6.25, 59: 5.125}
    kept = fake_run(tmp_path / "kept", "seed-experiment-3k-ab", {19: 7.5, 39: 6.25}, {39: 6.25, 59: 5.125})
    same = fake_run(tmp_path / "again", "seed-experiment-3k-ab", losses)
    assert mr.differs_from_kept(same, kept) is None  # a resumed part's losses are the run's too
    kept["summary"].train_tokens = 400  # the grid's resumed run counted its last part's tokens only
    assert mr.differs_from_kept(same, kept) is None
    other = fake_run(tmp_path / "b", "seed-experiment-3k-ab", {19: 7.5, 39: 6.25, 59: 5.1250001})
    assert "training loss at step 59" in mr.differs_from_kept(other, kept)
    bleu = fake_run(tmp_path / "c", "seed-experiment-3k-ab", losses, final_val_bleu=36.5)
    assert "final_val_bleu" in mr.differs_from_kept(bleu, kept)
    assert "no kept run" in mr.differs_from_kept(same, None)
    fewer = fake_run(tmp_path / "d", "seed-experiment-3k-ab", {19: 7.5, 39: 6.25})  # equal where both log
    assert "logged steps differ: 1 only in the kept run, 0 only here" in mr.differs_from_kept(fewer, kept)
    nothing = fake_run(tmp_path / "e", "seed-experiment-3k-ab", {})
    assert "no logged training loss" in mr.differs_from_kept(same, nothing)
    # a resumed part that logs step 39 again with another loss did not retrace the run: the later value would
    # hide it
    twice = fake_run(tmp_path / "f", "seed-experiment-3k-ab", {19: 7.5, 39: 6.0}, {39: 6.25, 59: 5.125})
    assert "a step logged twice with two losses: 39 (kept)" in mr.differs_from_kept(same, twice)


def test_the_reruns_section_reports_bleu_and_losses_of_each_rerun(tmp_path, monkeypatch):
    mr = make_results()
    kept = fake_run(tmp_path / "kept", "seed-experiment-3k-ab", {19: 7.5, 39: 6.25}, final_test_bleu=30.0)
    monkeypatch.setattr(mr, "RERUNS", tmp_path / "rerun")
    again = fake_run(
        tmp_path / "rerun",
        "rerun-ab",
        {19: 7.5, 39: 6.0},
        final_val_bleu=36.4,
        final_test_bleu=30.1,
        commit="b574b6d0+",
    )
    RunDir(again["dir"]).write_summary(again["summary"])
    equal = fake_run(tmp_path / "rerun", "seed-experiment-3k-ab", {19: 7.5, 39: 6.25}, final_test_bleu=30.0)
    RunDir(equal["dir"]).write_summary(equal["summary"])
    kept["label"] = "en-de · none · seed 1"
    first, second = [x for x in mr.rerun_section([kept]) if x.startswith("- ")]
    assert "(`rerun/rerun-ab`, code at commit b574b6d+)" in first  # its tracked files differed from the commit
    assert "val BLEU 36.00 then 36.40 (difference +0.40)" in first and "test BLEU 30.00 then 30.10" in first
    assert "equal to the last bit at 1 of 2 logged steps" in first and "Within 0.3 BLEU: no." in first
    assert "the same training: no (training loss at step 39: 6.25 kept, 6.0 here)" in first
    assert "(`rerun/seed-experiment-3k-ab`, code's commit not recorded)" in second
    assert "at 2 of 2 logged steps; the same training: yes. Within 0.3 BLEU: yes." in second
    assert mr.rerun_section([]) == []
