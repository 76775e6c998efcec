"""The layers of the network (:mod:`tiedtransformer.model.network`): position encodings, a dropout
with a cheaper CPU mask, attention, and one encoder or decoder block. Pure ``nn.Module``s and
functions; no configuration object (the network passes each its numbers)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoids(n_positions: int, d: int) -> torch.Tensor:
    """Sinusoidal position encodings (Vaswani et al. 2017, 3.5), shape (n_positions, d)."""
    pos = torch.arange(n_positions, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(n_positions, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table


# A CPU dropout mask from 16-bit slices of 64-bit random words: the mask of one element costs a
# third of a 64-bit draw of torch's generator instead of one Bernoulli draw (seeded, and in the RNG
# state a checkpoint keeps, as torch's own dropout). The top slice of a word is not used: torch draws
# int64 values in [0, 2**63), so its highest bit is always 0.
_SLICES_PER_WORD, _LEVELS = 3, 1 << 16


def keep_mask(shape: torch.Size | tuple[int, ...], p: float) -> tuple[torch.Tensor, float]:
    """A bool mask of ``shape`` whose elements are True (kept) with probability ``1 - q``, independently,
    drawn from torch's CPU generator, and the scale ``1 / (1 - q)`` that keeps expectations; ``q`` is
    ``p`` rounded to a multiple of 2**-16 (at most 1 - 2**-16)."""
    dropped = min(round(p * _LEVELS), _LEVELS - 1)  # of the 2**16 values a slice takes, those that drop
    numel = math.prod(shape)
    words = -(-numel // _SLICES_PER_WORD)
    slices = torch.empty(words, dtype=torch.int64).random_().view(torch.int16).view(words, 4)[:, :_SLICES_PER_WORD]
    keep = (slices >= dropped - _LEVELS // 2).reshape(-1)[:numel].view(shape)  # int16 runs -2**15 .. 2**15 - 1
    return keep, _LEVELS / (_LEVELS - dropped)


class _ScaledMask(torch.autograd.Function):
    """``x * keep * scale`` whose backward is ``grad * keep * scale``; the scale is a Python float, so a
    bf16 result is rounded once per element (a bf16 copy of 1/0.9 would shrink every output by 0.16%)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        m = keep.to(x.dtype)
        ctx.save_for_backward(m)
        ctx.scale = scale
        return (x * m).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (m,) = ctx.saved_tensors
        return (grad * m).mul_(ctx.scale), None, None


class Dropout(nn.Module):
    """``nn.Dropout`` with a cheaper mask on a CPU (:func:`keep_mask`); elsewhere torch's own.

    torch's CPU dropout draws one Bernoulli number an element; ``python -m benchmarks.dropout`` times
    the recipe's whole training step both ways."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        keep, scale = keep_mask(x.shape, self.p)
        return _ScaledMask.apply(x, keep, scale)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, is_causal: bool
) -> torch.Tensor:
    """``scaled_dot_product_attention``, computed in fp32 on a CPU where q, k, v are bf16 (autocast, or
    a bf16 model); the result has q's dtype.

    The CPU's bf16 flash-attention backward is several times slower than fp32's and made the whole bf16
    step slower than fp32's; the matrix products around it stay bf16 (``python -m benchmarks.precision``
    times the step both ways). On a GPU bf16 attention is fast.
    """
    if q.dtype == torch.bfloat16 and q.device.type == "cpu":
        with torch.autocast("cpu", enabled=False):  # autocast would cast fp32 inputs back to bf16
            y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask, is_causal=is_causal)
        return y.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)


class Attention(nn.Module):
    """Multi-head attention on ``scaled_dot_product_attention``; q, k, v projected by one matmul."""

    def __init__(self, d: int, n_heads: int, cross: bool):
        super().__init__()
        self.n_heads, self.cross = n_heads, cross
        if cross:  # queries come from the decoder, keys and values from the encoder output
            self.q_proj = nn.Linear(d, d)
            self.kv_proj = nn.Linear(d, 2 * d)
        else:
            self.qkv_proj = nn.Linear(d, 3 * d)
        self.out_proj = nn.Linear(d, d)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, h, T, d/h)
        B, T, d = x.shape
        return x.view(B, T, self.n_heads, d // self.n_heads).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,  # (B, T, d)
        memory: torch.Tensor | None = None,  # (B, S, d), cross-attention only
        mask: torch.Tensor | None = None,  # bool, True = may attend; broadcastable to (B, h, T, S)
        is_causal: bool = False,
        cache: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        if self.cross:
            q = self._split(self.q_proj(x))
            if cache is not None and "k" in cache:  # the encoder output does not change while decoding
                k, v = cache["k"], cache["v"]
            else:
                k, v = map(self._split, self.kv_proj(memory).chunk(2, dim=-1))
        else:
            q, k, v = map(self._split, self.qkv_proj(x).chunk(3, dim=-1))
            if cache is not None and "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
        if cache is not None:
            cache["k"], cache["v"] = k, v
        B, h, T, dh = q.shape
        g = B // k.size(0)  # queries per memory row: the beams of one sentence share its encoder output
        if g > 1:  # cross-attention has no order among queries: a sentence's beams become its query rows
            q = q.view(-1, g, h, T, dh).transpose(1, 2).reshape(-1, h, g * T, dh)
        y = attention(q, k, v, mask, is_causal)  # (B/g, h, g·T, d/h)
        if g > 1:
            y = y.view(-1, h, g, T, dh).transpose(1, 2).reshape(B, h, T, dh)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, -1))


class Block(nn.Module):
    """One encoder layer (self-attention, feed-forward) or decoder layer (plus cross-attention)."""

    def __init__(self, d: int, n_heads: int, d_ff: int, dropout: float, norm_first: bool, decoder: bool):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn, self.self_norm = Attention(d, n_heads, cross=False), nn.LayerNorm(d)
        self.cross_attn = Attention(d, n_heads, cross=True) if decoder else None
        self.cross_norm = nn.LayerNorm(d) if decoder else None
        self.ffn = nn.Sequential(nn.Linear(d, d_ff), nn.ReLU(), nn.Linear(d_ff, d))
        self.ffn_norm = nn.LayerNorm(d)
        self.dropout = Dropout(dropout)

    def _residual(self, x: torch.Tensor, norm: nn.LayerNorm, sublayer) -> torch.Tensor:
        if self.norm_first:
            return x + self.dropout(sublayer(norm(x)))
        return norm(x + self.dropout(sublayer(x)))

    def forward(self, x, self_mask=None, is_causal=False, memory=None, memory_mask=None, cache=None):
        x = self._residual(
            x,
            self.self_norm,
            lambda h: self.self_attn(
                h, mask=self_mask, is_causal=is_causal, cache=None if cache is None else cache["self"]
            ),
        )
        if self.cross_attn is not None:
            x = self._residual(
                x,
                self.cross_norm,
                lambda h: self.cross_attn(h, memory, mask=memory_mask, cache=None if cache is None else cache["cross"]),
            )
        return self._residual(x, self.ffn_norm, self.ffn)
