"""What a fit did, as one typed record (:class:`FitSummary`): written to ``summary.json`` by the
``RunSummary`` callback when fit ends or fails, read by ``compare``, the seed experiment's tables, the
results page and the export's model card. A field added here is written and read by every one of them;
a key the file has that this version does not know is kept aside (``extra``), a missing one is None."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class FitSummary:
    status: str | None = None
    """"finished", or "failed: <exception>"."""
    version: str | None = None
    """The tiedtransformer version that trained the run."""
    commit: str | None = None
    """The git commit of the code that trained it when fit started, ``+`` when its tracked files differed from
    it; None when it is not known: an installed package (not a checkout), git missing or refusing the
    checkout, or a run trained before this field existed."""
    run_dir: str | None = None
    tying: str | None = None
    direction: str | None = None
    seed: int | None = None
    vocab_size: int | None = None
    joint_vocab: bool | None = None
    unique_params: int | None = None
    """Parameters counted once per tensor (a tied matrix once)."""
    untied_params: int | None = None
    embedding_params: int | None = None
    tied_with: dict | None = None
    best_val_bleu: float | None = None
    val_bleu_by_validation: list = field(default_factory=list)
    """Every validation's BLEU: epoch, step, wall_s, bleu, chrf."""
    val_bleu_sentences: int | None = None
    val_bleu_search: str | None = None
    final_val_bleu: float | None = None
    """The final evaluation: the whole validation set with the predict search."""
    final_val_chrf: float | None = None
    final_val_sentences: int | None = None
    final_test_bleu: float | None = None
    final_test_bleu_ci: float | None = None
    """Half the 95% bootstrap interval."""
    final_test_chrf: float | None = None
    final_test_chrf_ci: float | None = None
    final_test_sentences: int | None = None
    final_search: str | None = None
    final_weights: str | None = None
    chrf_signature: str | None = None
    sacrebleu_signature: str | None = None
    final_val_loss: float | None = None
    train_tokens: int | None = None
    train_tokens_per_s: float | None = None
    """Target tokens per second of the training step alone (no data wait, no validation)."""
    wall_s: float | None = None
    epochs: int | None = None
    global_step: int | None = None
    skipped_steps: int | None = None
    filtered_pairs_per_epoch: dict | None = None
    machine: dict | None = None
    """Where the run trained: CPU, cores, system, Python, torch threads, GPU."""
    extra: dict = field(default_factory=dict, repr=False)
    """Keys of the file that this version does not know (a newer or older writer's)."""

    @classmethod
    def from_json(cls, data: dict) -> FitSummary:
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        data = data if isinstance(data, dict) else {}
        return cls(
            **{k: v for k, v in data.items() if k in known}, extra={k: v for k, v in data.items() if k not in known}
        )

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**self.extra, **out}

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    @property
    def target_lang(self) -> str | None:
        """The language translated into (``en-de`` -> ``de``)."""
        return self.direction.split("-")[-1] if self.direction else None
