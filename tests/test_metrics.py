"""tiedtransformer.training.metrics: validation's BLEU and chrF as synced metric states equal sacreBLEU's."""

import pytest
import sacrebleu
import torch
from torchmetrics.text import CHRFScore

from tiedtransformer.analysis.scores import corpus_scores
from tiedtransformer.training.metrics import SacreScore, ValidationMetrics

HYPS = [
    "Ein Mann fährt Fahrrad .",
    "Zwei Hunde spielen im Schnee",
    "Eine Frau liest ein Buch im Park.",
    "x",
    "Kinder, die auf einer Wiese spielen.",
    "",
]
REFS = [
    "Ein Mann fährt ein Fahrrad.",
    "Zwei Hunde spielen im Schnee.",
    "Eine Frau liest im Park ein Buch.",
    "Ja",
    "Kinder spielen auf einer grünen Wiese.",
    "Leer.",
]


@pytest.mark.parametrize("kind", ["bleu", "chrf"])
def test_ranks_states_merged_score_as_sacrebleu_on_all_sentences(kind):
    """Two ranks each update with their share; merging their states (what the sync does) gives sacreBLEU's
    corpus score of all sentences, to the last digit, and the same as the final evaluation's function."""
    ranks = [SacreScore(kind), SacreScore(kind)]
    ranks[0].update(HYPS[0::2], REFS[0::2])
    ranks[1].update(HYPS[1::2][:1], REFS[1::2][:1])
    ranks[1].update(HYPS[1::2][1:], REFS[1::2][1:])  # a rank's several batches
    ranks[0].merge_state(ranks[1])
    whole = corpus_scores(HYPS[0::2] + HYPS[1::2], REFS[0::2] + REFS[1::2])[kind]
    assert float(ranks[0].compute()) == pytest.approx(whole, abs=1e-9)
    direct = (sacrebleu.corpus_bleu if kind == "bleu" else sacrebleu.corpus_chrf)(HYPS, [REFS]).score
    assert float(ranks[0].compute()) == pytest.approx(direct, abs=1e-9)


def test_torchmetrics_own_chrf_differs_where_a_hypothesis_is_shorter_than_the_ngram_order():
    """Why SacreScore is used for chrF (docstring): CHRFScore agrees on ordinary sentences, not on a one-letter
    hypothesis. If a torchmetrics release fixes this, the class could go."""
    ours = CHRFScore(n_char_order=6, n_word_order=0)
    ours.update(HYPS[:3], [[r] for r in REFS[:3]])
    assert 100 * float(ours.compute()) == pytest.approx(sacrebleu.corpus_chrf(HYPS[:3], [REFS[:3]]).score, abs=0.01)
    ours.update(HYPS[3:4], [[r] for r in REFS[3:4]])
    assert abs(100 * float(ours.compute()) - sacrebleu.corpus_chrf(HYPS[:4], [REFS[:4]]).score) > 0.1


def test_nothing_scored_is_zero_and_a_mismatch_is_an_error():
    assert float(SacreScore("bleu").compute()) == 0.0
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        SacreScore("chrf").update(["a", "b"], ["a"])


def test_the_signature_is_sacrebleus():
    assert SacreScore("bleu").signature() == corpus_scores(HYPS, REFS)["bleu_signature"]
    assert SacreScore("chrf").signature() == corpus_scores(HYPS, REFS)["chrf_signature"]


def test_validation_sums_reset_and_keep_float64():
    m = ValidationMetrics()
    m.loss.update(torch.tensor(1e8, dtype=torch.float64))
    m.loss.update(torch.tensor(1.0, dtype=torch.float64))
    assert float(m.loss.compute()) == 1e8 + 1  # float32 would lose the 1
    m.bleu.update(["a b c d"], ["a b c d"])
    m.reset()
    assert float(m.loss.compute()) == 0.0 and float(m.bleu.compute()) == 0.0


def _rank_scores(rank: int, world: int, port: int, out) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        scores = {}
        for kind in ("bleu", "chrf"):
            metric = SacreScore(kind)
            metric.update(HYPS[rank::world], REFS[rank::world])  # this rank's share, as validation gives it
            scores[kind] = float(metric.compute())  # synced across the ranks by torchmetrics
        out.put((rank, scores))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_sync_to_the_score_of_all_sentences():
    """A real sync (two gloo processes), not a merge in one process: every rank gets sacreBLEU's score of
    every rank's sentences together."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_rank_scores, args=(r, 2, port, out)) for r in range(2)]
    for p in procs:
        p.start()
    got = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    whole = corpus_scores(HYPS, REFS)
    for rank in (0, 1):
        assert got[rank]["bleu"] == pytest.approx(whole["bleu"], abs=1e-9)
        assert got[rank]["chrf"] == pytest.approx(whole["chrf"], abs=1e-9)
