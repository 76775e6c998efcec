"""The whole network: an encoder-decoder Transformer (Vaswani et al. 2017) whose token matrices can be
tied (Press & Wolf 2017). A pure ``nn.Module``: no Lightning, no data, no logging.

The three token matrices are named as in the experiment this project reproduces:
``enc_embed`` (encoder input embedding), ``dec_embed`` (decoder input embedding) and ``dec_lut``
(decoder output table, the pre-softmax projection). The fourth, ``enc_lut``, is computed, not stored:
see :meth:`TiedTransformer.encoder_output_table`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

import torch
from torch import nn

from tiedtransformer.errors import ConfigError
from tiedtransformer.model.layers import Block, Dropout, sinusoids
from tiedtransformer.model.loss import label_smoothed_nll, linear_label_smoothed_nll
from tiedtransformer.specials import PAD_ID

Tying = Literal["none", "decoder", "src_tgt", "three_way"]
TYING_MODES: tuple[str, ...] = get_args(Tying)
JOINT_VOCAB_MODES = ("src_tgt", "three_way")
TOKEN_MATRICES = ("enc_embed", "enc_lut", "dec_embed", "dec_lut")  # the experiment's four, in its order

# One decoder layer's key/value cache: {"self": {"k", "v"}, "cross": {"k", "v"}}, tensors (B, h, T, d/h).
Cache = list[dict[str, dict[str, torch.Tensor]]]


@dataclass
class TransformerConfig:
    """Shape and tying of the network. Defaults are Transformer base with a 37k joint vocabulary."""

    vocab_size: int = 37000
    """Tokens in each vocabulary (source and target have the same size)."""
    joint_vocab: bool = True
    """Source and target share one subword vocabulary; `src_tgt` and `three_way` need it."""
    d_model: int = 512
    """Width of embeddings and hidden states."""
    n_heads: int = 8
    """Attention heads per layer."""
    n_encoder_layers: int = 6
    """Encoder layers."""
    n_decoder_layers: int = 6
    """Decoder layers."""
    d_ff: int = 2048
    """Inner width of the feed-forward sublayers."""
    dropout: float = 0.1
    """Dropout on sublayer outputs and on embeddings + positions (Vaswani et al. 2017, 5.4)."""
    norm_first: bool = False
    """Pre-norm (LayerNorm before each sublayer, final LayerNorm per stack); the paper is post-norm."""
    tying: Tying = "none"
    """Which token matrices are one Parameter: none | decoder (dec_embed = dec_lut, Press & Wolf) |
    src_tgt (enc_embed = dec_embed) | three_way (all three; Vaswani et al. 2017)."""
    projection_reg: float = 0.0
    """Projection Regularization λ (Press & Wolf 2017, 4): if > 0, a d×d matrix P sits before
    dec_lut and λ·‖P‖_F is added to the loss (the paper uses 0.15)."""
    max_positions: int = 1024
    """Longest sequence the sinusoidal position table covers."""

    def __post_init__(self) -> None:
        if self.tying not in TYING_MODES:
            raise ConfigError(
                f"unknown tying mode {self.tying!r} (option model.net.tying); valid: {', '.join(TYING_MODES)}"
            )
        if self.tying in JOINT_VOCAB_MODES and not self.joint_vocab:
            raise ConfigError(
                f"tying={self.tying!r} shares the encoder's input matrix with the decoder's, which needs one "
                "joint source/target vocabulary, but joint_vocab is false. Set data.joint_vocab=true, or "
                "choose model.net.tying 'none' or 'decoder'."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.net.dropout={self.dropout} is not a probability in [0, 1); 0.1 is the paper's")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.vocab_size <= PAD_ID:
            raise ConfigError(f"vocab_size={self.vocab_size} is too small")


def tied_groups(matrices: dict[str, object]) -> dict[str, list[str]]:
    """For each name, the other names that hold the very same object (tied matrices are one Parameter)."""
    return {a: [b for b in matrices if b != a and matrices[b] is matrices[a]] for a in matrices}


def first_tied(matrices: dict[str, object]) -> dict[str, str | None]:
    """For each name, the first name (in order) holding the same object, or None for that first one
    itself: a tied matrix is stored, analysed and reported once, under its first name."""
    out = {}
    for a, m in matrices.items():
        first = next(b for b in matrices if matrices[b] is m)
        out[a] = first if first != a else None
    return out


class Loss(NamedTuple):
    """What :meth:`TiedTransformer.loss` returns; sums are over the batch's non-padding target tokens."""

    loss: torch.Tensor  # () what training minimises: mean smoothed loss per token + Projection Regularization
    loss_sum: torch.Tensor  # () summed label-smoothed cross-entropy
    nll_sum: torch.Tensor  # () summed negative log-likelihood (perplexity is exp(nll_sum / tokens))
    tokens: torch.Tensor  # () target tokens counted


class TiedTransformer(nn.Module):
    """Encoder-decoder Transformer whose token matrices are tied according to ``cfg.tying``."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        V, d = cfg.vocab_size, cfg.d_model
        self.enc_embed = nn.Embedding(V, d)
        self.dec_embed = nn.Embedding(V, d)
        self.projection = nn.Linear(d, d, bias=False) if cfg.projection_reg > 0 else None  # P
        self.dec_lut = nn.Linear(d, V, bias=False)
        block = functools.partial(Block, d, cfg.n_heads, cfg.d_ff, cfg.dropout, cfg.norm_first)
        self.encoder = nn.ModuleList(block(decoder=False) for _ in range(cfg.n_encoder_layers))
        self.decoder = nn.ModuleList(block(decoder=True) for _ in range(cfg.n_decoder_layers))
        self.enc_norm = nn.LayerNorm(d) if cfg.norm_first else nn.Identity()
        self.dec_norm = nn.LayerNorm(d) if cfg.norm_first else nn.Identity()
        self.dropout = Dropout(cfg.dropout)
        self.register_buffer("positions", sinusoids(cfg.max_positions, d), persistent=False)
        self._compiled: list = []  # see compile_teacher_forcing (a list: no submodule, no state)
        self._init_weights()
        # Weight tying, the one place it happens: tied matrices become the same Parameter object.
        # Press & Wolf 2017 (arXiv 1608.05859): decoder input = output embedding; three-way weight
        # tying (TWWT) adds the encoder input, which needs a joint vocabulary (as Vaswani et al. 2017).
        if cfg.tying in ("decoder", "three_way"):
            self.dec_embed.weight = self.dec_lut.weight
        if cfg.tying in ("src_tgt", "three_way"):
            self.enc_embed.weight = self.dec_embed.weight

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # Token matrices ~ N(0, d^-1/2): scaled by sqrt(d) at the input, they start at unit scale.
        for w in (self.enc_embed.weight, self.dec_embed.weight, self.dec_lut.weight):
            nn.init.normal_(w, std=self.cfg.d_model**-0.5)
        if self.projection is not None:
            nn.init.eye_(self.projection.weight)  # starts as the unregularised model

    # --- parts -------------------------------------------------------------------------------

    def _embed(self, table: nn.Embedding, tokens: torch.Tensor, offset: int = 0) -> torch.Tensor:
        T = tokens.size(1)
        if offset + T > self.cfg.max_positions:
            raise ValueError(f"sequence of {offset + T} tokens is longer than max_positions={self.cfg.max_positions}")
        x = table(tokens) * math.sqrt(self.cfg.d_model) + self.positions[offset : offset + T]
        return self.dropout(x)  # (B, T, d)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode source ids (B, S); returns the memory (B, S, d) and its key mask (B, 1, 1, S)."""
        src_mask = (src != PAD_ID)[:, None, None, :]
        x = self._embed(self.enc_embed, src)
        for layer in self.encoder:
            x = layer(x, self_mask=src_mask)
        return self.enc_norm(x), src_mask

    def decode(
        self,
        tgt: torch.Tensor,  # (B, T) target ids; with a cache, only the tokens not yet seen
        memory: torch.Tensor,  # (B / g, S, d)
        memory_mask: torch.Tensor,  # (B / g, 1, 1, S)
        cache: Cache | None = None,
    ) -> torch.Tensor:
        """Decoder hidden states (B, T, d); pass a cache from :meth:`new_cache` to decode step by step.
        ``memory`` may hold one row per g consecutive target rows (the g beams of a sentence share it)."""
        past = cache[0]["self"]["k"].size(2) if cache and "k" in cache[0]["self"] else 0
        T = tgt.size(1)
        # Right padding only: a causal mask already keeps real positions off the padding.
        self_mask, is_causal = None, T > 1 and past == 0
        if T > 1 and past > 0:
            self_mask = torch.ones(T, past + T, dtype=torch.bool, device=tgt.device).tril(diagonal=past)
        x = self._embed(self.dec_embed, tgt, offset=past)
        for i, layer in enumerate(self.decoder):
            x = layer(
                x,
                self_mask=self_mask,
                is_causal=is_causal,
                memory=memory,
                memory_mask=memory_mask,
                cache=None if cache is None else cache[i],
            )
        return self.dec_norm(x)

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """What ``dec_lut`` multiplies: decoder hidden states (..., d), through P if there is one."""
        return hidden if self.projection is None else self.projection(hidden)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Pre-softmax scores (..., V) from decoder hidden states (..., d)."""
        return self.dec_lut(self.project(hidden))

    def output_inputs(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced inputs of the output layer (B, T, d): what ``dec_lut`` multiplies."""
        memory, memory_mask = self.encode(src)
        return self.project(self.decode(tgt_in, memory, memory_mask))

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V) for source (B, S) and shifted target (B, T)."""
        return self.dec_lut(self.output_inputs(src, tgt_in))

    def loss(
        self,
        src: torch.Tensor,
        tgt_in: torch.Tensor,
        tgt_out: torch.Tensor,
        label_smoothing: float = 0.0,
        fused: bool = True,
    ) -> Loss:
        """The training objective of a teacher-forced batch: label-smoothed cross-entropy of ``forward``'s
        logits against ``tgt_out`` (padding ignored) plus Projection Regularization. ``fused``: the output
        layer is fused into the loss (``loss.linear_label_smoothed_nll``), so that the (B, T, V) logits
        never exist whole; otherwise the loss is taken of the whole logits. Same values and gradients."""
        teacher_forced = self._compiled[0] if self._compiled else self.output_inputs
        hidden = teacher_forced(src, tgt_in)  # (B, T, d)
        if fused:
            loss_sum, nll_sum, tokens = linear_label_smoothed_nll(hidden, self.dec_lut.weight, tgt_out, label_smoothing)
        else:
            loss_sum, nll_sum, tokens = label_smoothed_nll(self.dec_lut(hidden), tgt_out, label_smoothing)
        mean = loss_sum / tokens.clamp(min=1) + self.regularization_loss()
        return Loss(mean, loss_sum, nll_sum, tokens)

    def compile_teacher_forcing(self) -> None:
        """Run the teacher-forced part of :meth:`loss` through ``torch.compile`` (dynamic shapes); the
        parameters, ``state_dict`` and decoding stay as they are."""
        self._compiled = [torch.compile(self.output_inputs, dynamic=True)]

    def new_cache(self) -> Cache:
        return [{"self": {}, "cross": {}} for _ in self.decoder]

    @staticmethod
    def reorder_cache(cache: Cache, index: torch.Tensor, part: Literal["self", "cross"] = "self") -> None:
        """Keep (and reorder) the batch rows ``index`` of the cached self-attention (decoder rows) or
        cross-attention (memory rows) keys and values, in place."""
        for layer in cache:
            kv = layer[part]
            for key in kv:
                kv[key] = kv[key].index_select(0, index)

    def regularization_loss(self) -> torch.Tensor:
        """λ·‖P‖_F of Projection Regularization, or 0 when it is off."""
        if self.projection is None:
            return self.dec_lut.weight.new_zeros(())
        return self.cfg.projection_reg * torch.linalg.matrix_norm(self.projection.weight)

    # --- the token matrices and parameter accounting ------------------------------------------

    def embedding_matrices(self) -> dict[str, nn.Parameter]:
        """The stored token matrices by name, each (V, d); tied names map to the same Parameter."""
        return {
            "enc_embed": self.enc_embed.weight,
            "dec_embed": self.dec_embed.weight,
            "dec_lut": self.dec_lut.weight,
        }

    def tied_with(self) -> dict[str, list[str]]:
        """For each matrix name, the other names that are the same Parameter."""
        return tied_groups(self.embedding_matrices())

    @torch.no_grad()
    def encoder_output_table(self, batch_size: int = 1024) -> torch.Tensor:
        """``enc_lut`` (V, d): the encoder's final state for each token fed alone as a one-token source."""
        was_training = self.training
        self.eval()
        device = self.enc_embed.weight.device
        rows = []
        for start in range(0, self.cfg.vocab_size, batch_size):
            ids = torch.arange(start, min(start + batch_size, self.cfg.vocab_size), device=device)
            memory, _ = self.encode(ids[:, None])
            rows.append(memory[:, 0].float())
        self.train(was_training)
        return torch.cat(rows)

    @torch.no_grad()
    def token_matrices(self) -> dict[str, torch.Tensor]:
        """The four (V, d) token matrices of the experiment (``TOKEN_MATRICES``, in that order), detached
        fp32; ``enc_lut`` is computed. Tied names map to the same tensor object."""
        stored = {id(p): p.detach().float() for p in self.embedding_matrices().values()}
        mats = {name: stored[id(p)] for name, p in self.embedding_matrices().items()}
        mats["enc_lut"] = self.encoder_output_table()
        return {name: mats[name] for name in TOKEN_MATRICES}

    def num_params(self, unique: bool = True) -> int:
        """Parameter count; ``unique`` counts a tied matrix once (the figure papers report), otherwise
        once per role, which equals the same network with ``tying='none'``."""
        return sum(p.numel() for _, p in self.named_parameters(remove_duplicate=unique))

    def embedding_params(self) -> int:
        """Parameters in the distinct token matrices."""
        distinct = {id(p): p for p in self.embedding_matrices().values()}
        return sum(p.numel() for p in distinct.values())

    def flops(self, src_tokens: int, tgt_tokens: int, backward: bool = True) -> int:
        """FLOPs of a teacher-forced batch with this many real source and target tokens, by the usual
        rule (Kaplan et al. 2020): 2 per weight each token passes through forward, 6 with the backward
        pass (encoder layers for source tokens; decoder layers and the output layer for target tokens).
        Attention's score products are left out, as in that rule; the input embeddings are lookups."""
        enc, dec_out = self._weights_per_token
        return (6 if backward else 2) * (enc * src_tokens + dec_out * tgt_tokens)

    @functools.cached_property
    def _weights_per_token(self) -> tuple[int, int]:
        """(weights a source token passes through, weights a target token passes through); counted once."""
        enc = sum(p.numel() for p in self.encoder.parameters())
        dec = sum(p.numel() for p in self.decoder.parameters())
        out = self.dec_lut.weight.numel() + (self.projection.weight.numel() if self.projection is not None else 0)
        return enc, dec + out
