"""Validation metrics as torchmetrics states, which Lightning's strategies sync across ranks: BLEU and chrF
summed as sacreBLEU's own sufficient statistics (each rank scores its share of the sentences; no hypothesis
string travels), and summed losses and token counts."""

from __future__ import annotations

import sacrebleu
import torch
from torchmetrics import Metric, SumMetric


class SacreScore(Metric):
    """A sacreBLEU corpus metric (``BLEU`` or ``CHRF``, default settings: 13a, mixed case; chrF2) over the
    sentences of every ``update``, on every rank: ``compute`` sums the per-sentence statistics sacreBLEU
    extracts, across updates and ranks, and scores them as ``sacrebleu.corpus_bleu`` / ``corpus_chrf``
    would score all those sentences at once (0-100).

    torchmetrics' own ``SacreBLEUScore`` and ``CHRFScore`` were not used: ``CHRFScore`` differs from
    sacreBLEU's chrF where a hypothesis is shorter than the n-gram order (tests/test_metrics.py), and one
    class for both keeps validation's scores equal to the final evaluation's (which uses sacreBLEU itself,
    for its signature and bootstrap intervals)."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, kind: str, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        width = len(self._scorer()._extract_corpus_statistics(["a"], [["a"]])[0])
        self.add_state("stats", default=torch.zeros(width, dtype=torch.float64), dist_reduce_fx="sum")

    def _scorer(self):
        return {"bleu": sacrebleu.metrics.BLEU, "chrf": sacrebleu.metrics.CHRF}[self.kind]()

    def update(self, hyps: list[str], refs: list[str]) -> None:
        if len(hyps) != len(refs):
            raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
        if hyps:
            per_sentence = self._scorer()._extract_corpus_statistics(hyps, [refs])
            self.stats += torch.tensor(per_sentence, dtype=torch.float64, device=self.stats.device).sum(0)

    def signature(self) -> str:
        """sacreBLEU's signature of these settings, one reference per sentence (as ``sacrebleu`` prints it)."""
        scorer = self._scorer()
        scorer.corpus_score(["a"], [["a"]])  # the signature names the number of references a scoring used
        return str(scorer.get_signature())

    def compute(self) -> torch.Tensor:
        stats = [int(round(x)) for x in self.stats.tolist()]
        return torch.tensor(self._scorer()._compute_score_from_stats(stats).score, dtype=torch.float64)


class ValidationMetrics(torch.nn.Module):
    """What one validation (or test) pass sums over its batches and sentences, on every rank: the label-smoothed
    loss, the NLL and the target tokens of teacher forcing; BLEU, chrF and the number of sentences scored."""

    def __init__(self):
        super().__init__()
        self.loss, self.nll, self.tokens, self.sentences = (SumMetric().set_dtype(torch.float64) for _ in range(4))
        self.bleu, self.chrf = SacreScore("bleu"), SacreScore("chrf")

    def reset(self) -> None:
        for m in self.children():
            m.reset()
