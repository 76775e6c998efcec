import random
import re
import subprocess
import sys

import pytest
import sacrebleu

from tiedtransformer.analysis.scores import corpus_scores, paired_significance, sample_ids


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


WORDS = "a the cat dog sat ran on under mat park two men play chess red big small".split()


def _corpus(seed: int, n: int = 60) -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(seed)
    refs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) for _ in range(n)]

    def noisy(p):
        return [" ".join(w if rng.random() > p else rng.choice(WORDS) for w in r.split()) for r in refs]

    return refs, noisy(0.35), noisy(0.2)


def test_paired_bootstrap_equals_sacrebleus_command_line(tmp_path):
    refs, base, better = _corpus(0)
    for name, lines in (("ref", refs), ("base", base), ("sys", better)):
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    cli = subprocess.run(  # --format json fails in sacreBLEU 2.6 (numpy floats): read the text table
        [
            sys.executable,
            "-m",
            "sacrebleu",
            str(tmp_path / "ref"),
            "-i",
            str(tmp_path / "base"),
            str(tmp_path / "sys"),
            "-m",
            "bleu",
            "chrf",
            "--paired-bs",
            "--format",
            "text",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    bleu_p, chrf_p = (float(p) for p in re.findall(r"\(p = ([0-9.]+)\)", cli.stdout))
    ours = paired_significance(base, {"sys": better}, refs)["sys"]
    assert ours["bleu_p"] == pytest.approx(bleu_p, abs=1e-4) and ours["chrf_p"] == pytest.approx(chrf_p, abs=1e-4)
    assert ours["bleu_p"] < 0.05  # a clearly better system


def test_identical_output_is_not_significant_and_lengths_must_match():
    refs, base, _ = _corpus(1)
    assert paired_significance(base, {"same": list(base)}, refs) == {"same": {"bleu_p": 1.0, "chrf_p": 1.0}}
    with pytest.raises(ValueError):
        paired_significance(base, {"short": base[:-1]}, refs)


def test_bootstrap_interval_equals_sacrebleus_confidence():
    refs, base, _ = _corpus(2)
    ours = corpus_scores(base, refs, n_bootstrap=1000)
    score = sacrebleu.metrics.BLEU().corpus_score(base, [refs], n_bootstrap=1000)
    assert ours["bleu"] == pytest.approx(score.score) and ours["bleu_ci"] == pytest.approx(score._ci)
    assert 0 < ours["bleu_ci"] < 10 and ours["chrf_ci"] > 0
    assert "bleu_ci" not in corpus_scores(base, refs)


def test_the_interval_of_a_test_set_where_some_resamples_score_zero():
    # sacreBLEU's own interval fails here (TypeError from statistics.mean: chrF's empty resamples score
    # a plain 0.0, the others numpy float32); ours is the half-width of the middle 95% of the resampled
    # scores, drawn as sacreBLEU draws them (numpy's generator, seed 12345), each scored as a corpus
    import numpy as np

    refs = ["the cat sat on the mat today", "a dog runs in the park", "birds fly south in winter", "he reads"]
    hyps = [refs[0], "", "", ""]
    with pytest.raises(TypeError):
        sacrebleu.metrics.CHRF().corpus_score(hyps, [refs], 200)
    ours = corpus_scores(hyps, refs, n_bootstrap=200)
    idx = np.random.default_rng(12345).choice(len(refs), size=(200, len(refs)), replace=True)
    resampled = sorted(
        sacrebleu.metrics.CHRF().corpus_score([hyps[i] for i in row], [[refs[i] for i in row]]).score for row in idx
    )
    assert 0 in resampled and max(resampled) > 0
    assert ours["chrf_ci"] == pytest.approx(0.5 * (resampled[200 - 200 // 40 - 1] - resampled[200 // 40]), abs=1e-3)
    assert ours["chrf"] == pytest.approx(sacrebleu.metrics.CHRF().corpus_score(hyps, [refs]).score)
