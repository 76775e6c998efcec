"""Translation quality as pure functions: which sentences to score, and sacreBLEU's BLEU and chrF."""

from __future__ import annotations

import random

import sacrebleu


def sample_ids(total: int, n: int | None, seed: int) -> list[int]:
    """Positions of a fixed, seeded sample of ``n`` of ``total`` sentences, in file order; all of them
    when ``n`` is None or at least ``total``. The same sample at every validation of a run, and one that
    does not depend on sentence length (scoring the first N of a length-bucketed stream would pick
    the shortest sentences and inflate BLEU)."""
    if n is None or n >= total:
        return list(range(total))
    return sorted(random.Random(f"val-sample/{seed}").sample(range(total), max(n, 0)))


def corpus_scores(hyps: list[str], refs: list[str], n_bootstrap: int = 1) -> dict:
    """sacreBLEU's corpus BLEU (13a tokenisation, mixed case) and chrF (chrF2, character 6-grams) of
    detokenized hypotheses against one reference each, with both signatures. With ``n_bootstrap`` > 1
    also the half-widths of their 95% bootstrap intervals (``bleu_ci``, ``chrf_ci``), by sacreBLEU's
    own resampling (as ``sacrebleu --confidence``; seed from ``SACREBLEU_SEED``, default 12345)."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    b, c = _corpus_score(bleu, hyps, refs, n_bootstrap), _corpus_score(chrf, hyps, refs, n_bootstrap)
    out = {
        "bleu": b.score,
        "chrf": c.score,
        "sentences": len(hyps),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }
    if n_bootstrap > 1 and hyps:
        out |= {"bleu_ci": float(b._ci), "chrf_ci": float(c._ci), "bootstrap": n_bootstrap}
    return out


def _corpus_score(metric, hyps: list[str], refs: list[str], n_bootstrap: int):
    """``metric.corpus_score``, also where sacreBLEU's interval fails: it averages the resampled scores with
    ``statistics.mean``, which cannot add a plain float (a resample with no matching unigram scores 0.0)
    to numpy's float32 (the others), and raises TypeError on small or poor test sets. Then the same
    resamples (same seed) are scored again and averaged as floats."""
    try:
        return metric.corpus_score(hyps, [refs], n_bootstrap)
    except TypeError:
        from sacrebleu.significance import _bootstrap_resample

        score = metric.corpus_score(hyps, [refs])
        metric.n_bootstrap = n_bootstrap
        metric.seed, resampled = _bootstrap_resample(
            metric._extract_corpus_statistics(hyps, [refs]), metric, n_bootstrap
        )
        for s in resampled:
            s.score = float(s.score)
        score.estimate_ci(resampled)
        return score


def paired_significance(
    baseline: list[str], systems: dict[str, list[str]], refs: list[str], n_samples: int = 1000
) -> dict:
    """sacreBLEU's paired bootstrap resampling (``sacrebleu --paired-bs``; its seed, 12345 unless
    ``SACREBLEU_SEED`` says otherwise) of each system against the baseline, on BLEU and chrF:
    ``{name: {"bleu_p": p, "chrf_p": p}}``; p is the probability that the difference arose by chance.
    A system whose output equals the baseline's gets p = 1 (sacreBLEU's count gives 1/(n+1) there)."""
    from sacrebleu.significance import PairedTest

    if not systems:
        return {}
    for name, hyps in {"baseline": baseline, **systems}.items():
        if len(hyps) != len(refs):
            raise ValueError(f"{name}: {len(hyps)} hypotheses for {len(refs)} references")
    metrics = {"BLEU": sacrebleu.metrics.BLEU(), "chrF": sacrebleu.metrics.CHRF()}
    named = [("baseline", baseline), *systems.items()]
    _, scores = PairedTest(named, metrics, [refs], test_type="bs", n_samples=n_samples)()
    bleu, chrf = (scores[k] for k in scores if k != "System")  # in the order of ``metrics``
    return {
        name: {"bleu_p": 1.0, "chrf_p": 1.0}
        if systems[name] == baseline
        else {"bleu_p": bleu[i].p_value, "chrf_p": chrf[i].p_value}
        for i, name in enumerate(systems, 1)
    }
