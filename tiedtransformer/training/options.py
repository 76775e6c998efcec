"""The training and decoding options of :class:`~tiedtransformer.training.module.TranslationModule`,
as config dataclasses (``model.optim.*``, ``model.decoding.*``); their field docstrings are the CLI
help. The network's own options are :class:`~tiedtransformer.model.network.TransformerConfig`
(``model.net.*``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tiedtransformer.errors import ConfigError
from tiedtransformer.search_defaults import BEAM_SIZE, LENGTH_PENALTY, MAX_LEN_A, MAX_LEN_B
from tiedtransformer.training.schedule import Schedule

Search = Literal["beam", "greedy"]


@dataclass
class OptimConfig:
    """Objective, optimiser and learning-rate schedule. Defaults: Vaswani et al. 2017 (5.3, 5.4)."""

    label_smoothing: float = 0.1
    """Label smoothing ε of the cross-entropy."""
    lr: float = 7e-4
    """Peak learning rate, reached at the end of warm-up (7e-4 ≈ Vaswani's d^-0.5·4000^-0.5)."""
    warmup_steps: int = 4000
    """Linear warm-up steps."""
    schedule: Schedule = "inverse_sqrt"
    """Decay after warm-up: inverse_sqrt (Vaswani et al.), or linear / cosine down to lr·final_lr_factor
    at the end of the budget (trainer.max_steps or trainer.max_time, whichever ends training first), so
    that a run stopped by its budget ends annealed on any machine."""
    final_lr_factor: float = 0.0
    """linear / cosine: the learning rate at the end of the budget, as a fraction of lr."""
    betas: tuple[float, float] = (0.9, 0.98)
    """Adam betas."""
    adam_eps: float = 1e-9
    """Adam epsilon."""
    weight_decay: float = 0.0
    """Decoupled weight decay (AdamW); 0 is the paper's Adam."""
    tokens_per_update: int | None = None
    """Tokens per optimizer update (padded, per side), across devices: sets trainer.accumulate_grad_batches
    to round(tokens_per_update / (data.max_tokens × devices × nodes)). Vaswani et al. used about 25,000.
    None: one batch per device and update."""
    fused_loss: bool | None = None
    """true: the output layer and the loss run together a chunk of rows at a time, so that the (tokens × V)
    logits never exist whole; false: the loss of the whole logits (same values and gradients). None: fused
    on a CPU, where it trained faster, whole logits on a GPU, where it trained slower
    (benchmarks/train_step.py). Set true on a GPU short of memory: 25,000 tokens × V 37,000 are 3.7 GB of
    fp32 logits, and their softmax and gradient as much again."""
    nonfinite: Literal["stop", "skip"] = "stop"
    """What a non-finite loss or gradient does: stop the run with an error (the weights stay finite), or
    skip the update (counted in train/skipped_steps)."""


@dataclass
class DecodeConfig:
    """The search of predict, test and the final evaluation."""

    search: Search = "beam"
    """beam or greedy."""
    beam_size: int = BEAM_SIZE
    """Beam width."""
    length_penalty: float = LENGTH_PENALTY
    """GNMT length penalty α."""
    max_len_a: float = MAX_LEN_A
    """Generated tokens at most a·(source length) + b ..."""
    max_len_b: int = MAX_LEN_B
    """... (b)."""

    def describe(self, search: Search | None = None) -> str:
        """The search in words, as reports print it next to a score."""
        if (search or self.search) == "greedy":
            return "greedy"
        return f"beam {self.beam_size}, length penalty {self.length_penalty}"


def use_fused_loss(option: bool | None, device_type: str) -> bool:
    """``model.optim.fused_loss`` on a device of this type (``torch.device.type``): as set, or when unset
    (None) fused everywhere but on a GPU, where the whole-logits loss trained faster."""
    return option if option is not None else device_type != "cuda"


def use_fused_adam(grad_scaler: bool, sharded: bool) -> bool:
    """Whether AdamW takes its fused kernel (one pass over all parameters; faster than ``foreach`` on the
    recipe's CPU, ``python -m benchmarks.optimizer``): not where a gradient scaler is at work
    (16-mixed on a GPU: Lightning unscales before clipping, a fused step unscales inside), nor on sharded
    (FSDP) weights, whose strategy clips them its own way."""
    return not grad_scaler and not sharded


def accumulation_steps(tokens_per_update: int, max_tokens: int, world_size: int) -> int:
    """Batches to accumulate per optimizer update so that ``max_tokens`` (per batch and device) times
    ``world_size`` times it comes nearest ``tokens_per_update``; an error when even one batch per
    device overshoots it by more than half (fewer tokens per batch are then needed)."""
    per_step = max_tokens * world_size
    steps = max(1, round(tokens_per_update / per_step))
    ratio = steps * per_step / tokens_per_update
    if ratio > 1.5:
        raise ConfigError(
            f"one batch of data.max_tokens={max_tokens} on each of {world_size} devices is already {per_step:,} tokens "
            f"per update, {ratio:.1f}x the model.optim.tokens_per_update={tokens_per_update:,} asked for: lower "
            f"data.max_tokens to {tokens_per_update // world_size} or less, or raise model.optim.tokens_per_update"
        )
    return steps
