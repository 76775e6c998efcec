import pytest
import sacrebleu

from tiedtransformer.training.evaluation import corpus_scores, sample_ids


def test_bleu_and_chrf_of_known_strings():
    # the example of sacreBLEU's README, first reference stream; scored by sacreBLEU's own functions
    hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    refs = ["The dog bit the man.", "It was not unexpected.", "The man bit him first."]
    s = corpus_scores(hyps, refs)
    assert s["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score) and s["sentences"] == 3
    assert s["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert 0 < s["bleu"] < 100 and 0 < s["chrf"] < 100
    assert s["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
    assert s["chrf_signature"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0")
    assert corpus_scores(refs, refs)["bleu"] == pytest.approx(100.0)
    assert corpus_scores(refs, refs)["chrf"] == pytest.approx(100.0)
    assert corpus_scores(["a b c d"], ["w x y z"])["bleu"] == pytest.approx(0.0)
    with pytest.raises(ValueError):
        corpus_scores(hyps, refs[:2])


def test_the_sample_is_fixed_seeded_in_file_order_and_all_when_small():
    a = sample_ids(3000, 1000, seed=0)
    assert a == sample_ids(3000, 1000, seed=0) and a == sorted(a) and len(set(a)) == 1000
    assert a != sample_ids(3000, 1000, seed=1)
    assert sample_ids(1014, None, 0) == sample_ids(1014, 5000, 0) == list(range(1014))
    assert sample_ids(10, 0, 0) == []
    # spread over the whole file, not its beginning
    assert min(a) < 100 and max(a) > 2900
