"""Greedy and beam search over :class:`~tiedtransformer.model.TiedTransformer`, batched, with a KV cache.

Both return, per source sentence, the generated target ids without BOS, EOS or padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tiedtransformer.model.network import TiedTransformer
from tiedtransformer.search_defaults import BEAM_SIZE, LENGTH_PENALTY, MAX_LEN_A, MAX_LEN_B
from tiedtransformer.specials import BOS_ID, EOS_ID, PAD_ID


def max_lengths(src: torch.Tensor, model: TiedTransformer, a: float, b: int) -> torch.Tensor:
    """Per-sentence limit on generated tokens (EOS included): a·|src| + b, within the position table."""
    src_len = (src != PAD_ID).sum(1)
    return (src_len * a + b).long().clamp(1, model.cfg.max_positions - 1)  # (B,)


# On the CPU, BLAS runs the output layer for a few rows much faster as W·hᵀ (V, N) than as h·Wᵀ
# (N, V). The transposed log-probabilities cost more downstream, so whole searches gain only for a few
# rows; the bound below is where they stopped gaining (``python -m benchmarks.decode`` times searches).
_CPU_TRANSPOSED_MAX_ROWS = 16


@dataclass(frozen=True)
class SearchTricks:
    """The beam search's speed-ups, each of which leaves the outputs as they are. All are on; the decode
    benchmark turns them off one at a time to measure what each gives."""

    early_finish: bool = True  # a sentence whose K hypotheses have ended leaves the batch
    shared_memory: bool = True  # the K beams of a sentence share its encoder rows (not K copies)
    transposed_output: bool = True  # W·hᵀ for few rows on the CPU (see above)


def _step_logprobs(model, tokens, memory, memory_mask, cache, transposed: bool = True) -> torch.Tensor:
    """Log-probabilities (N, V) of the next token: ``log_softmax(model.logits(...))``."""
    inp = tokens[:, -1:] if cache is not None else tokens  # with a cache only the newest token is fed
    hidden = model.decode(inp, memory, memory_mask, cache=cache)[:, -1]  # (N, d)
    if not transposed or hidden.device.type != "cpu" or hidden.size(0) > _CPU_TRANSPOSED_MAX_ROWS:
        return F.log_softmax(model.logits(hidden).float(), dim=-1)
    logits_t = model.dec_lut.weight @ model.project(hidden).t()  # (V, N), the same numbers transposed
    return F.log_softmax(logits_t.float(), dim=0).t()  # a view: no (N, V) copy


def _no_eos_before(logp: torch.Tensor, t: int, min_len: int) -> torch.Tensor:
    """Outputs shorter than ``min_len`` tokens (EOS included) may not end yet."""
    if t + 1 < min_len:
        logp[..., EOS_ID] = float("-inf")
    return logp


def _force_eos(logp: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """Where ``last`` (rows) is set, only EOS may follow."""
    if last.any():
        eos = logp[..., EOS_ID].clone()
        logp[last] = float("-inf")
        logp[..., EOS_ID] = torch.where(last.view(-1, *[1] * (eos.dim() - 1)), eos, logp[..., EOS_ID])
    return logp


def _strip(seq: list[int]) -> list[int]:
    return seq[: seq.index(EOS_ID)] if EOS_ID in seq else [t for t in seq if t != PAD_ID]


@torch.no_grad()
def greedy_decode(
    model: TiedTransformer,
    src: torch.Tensor,
    max_len_a: float = MAX_LEN_A,
    max_len_b: int = MAX_LEN_B,
    use_cache: bool = True,
    min_len: int = 0,
) -> list[list[int]]:
    """Most likely next token at every step; stops a sentence at EOS or at its length limit."""
    was_training = model.training
    model.eval()
    B = src.size(0)
    memory, memory_mask = model.encode(src)
    limits = max_lengths(src, model, max_len_a, max_len_b)
    tokens = src.new_full((B, 1), BOS_ID)
    cache = model.new_cache() if use_cache else None
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    for t in range(int(limits.max())):
        logp = _no_eos_before(_step_logprobs(model, tokens, memory, memory_mask, cache), t, min_len)
        logp = _force_eos(logp, limits == t + 1)
        nxt = logp.argmax(-1).masked_fill(done, PAD_ID)
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)
        done |= nxt == EOS_ID
        if done.all():
            break
    model.train(was_training)
    return [_strip(seq) for seq in tokens[:, 1:].tolist()]


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty ((5 + |Y|) / 6)^α (Wu et al. 2016), as used by Vaswani et al. (α = 0.6)."""
    return ((5.0 + length) / 6.0) ** alpha


@torch.no_grad()
def beam_search(
    model: TiedTransformer,
    src: torch.Tensor,  # (B, S)
    beam_size: int = BEAM_SIZE,
    alpha: float = LENGTH_PENALTY,
    max_len_a: float = MAX_LEN_A,
    max_len_b: int = MAX_LEN_B,
    use_cache: bool = True,
    min_len: int = 0,
    tricks: SearchTricks = SearchTricks(),
) -> list[list[int]]:
    """Beam search; a sentence is finished once ``beam_size`` hypotheses ended in EOS among the top
    candidates, and it leaves the batch then (its rows stop costing compute)."""
    was_training = model.training
    model.eval()
    B, K = src.size(0), beam_size
    memory, memory_mask = model.encode(src)
    limits = max_lengths(src, model, max_len_a, max_len_b)
    # memory stays one row per sentence: the decoder's cross-attention shares it among the K beams
    g = 1 if tricks.shared_memory else K  # memory rows per sentence
    if g > 1:
        memory, memory_mask = memory.repeat_interleave(g, 0), memory_mask.repeat_interleave(g, 0)
    alive = torch.arange(B, device=src.device)  # original index of each sentence still searching
    tokens = src.new_full((B * K, 1), BOS_ID)
    scores = torch.full((B, K), float("-inf"), device=src.device)
    scores[:, 0] = 0.0  # all beams start identical: let only the first one expand
    cache = model.new_cache() if use_cache else None
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(B)]

    for t in range(int(limits.max())):
        n = alive.numel()
        logp = _step_logprobs(model, tokens, memory, memory_mask, cache, tricks.transposed_output)  # (n*K, V)
        V = logp.size(-1)
        logp = _force_eos(_no_eos_before(logp, t, min_len).view(n, K, V), limits[alive] == t + 1)
        top_s, top_i = (scores[:, :, None] + logp).reshape(n, K * V).topk(min(2 * K, K * V), dim=1)  # (n, 2K)
        beam, tok = top_i // V, top_i % V
        is_eos = tok == EOS_ID

        # Hypotheses ending in EOS among the best K candidates are finished.
        lp = length_penalty(t + 1, alpha)
        hist = tokens.view(n, K, -1)
        for r, c in (is_eos[:, :K] & top_s[:, :K].isfinite()).nonzero().tolist():
            b = int(alive[r])
            if len(finished[b]) < K:
                finished[b].append((top_s[r, c].item() / lp, hist[r, beam[r, c], 1:].tolist()))

        # The K best candidates that did not end continue.
        next_s, order = top_s.masked_fill(is_eos, float("-inf")).topk(K, dim=1)  # (n, K)
        next_beam, next_tok = beam.gather(1, order), tok.gather(1, order)
        keep = next_s[:, 0].isfinite() & torch.tensor([len(finished[int(b)]) < K for b in alive], device=src.device)
        rows = keep.nonzero().squeeze(1)
        if rows.numel() == 0:
            break
        if not tricks.early_finish:  # finished sentences stay (their candidates are never kept)
            rows = torch.arange(n, device=src.device)
        select = (rows[:, None] * K + next_beam[rows]).view(-1)  # rows of the old (n*K) batch to carry on
        tokens = torch.cat([tokens[select], next_tok[rows].view(-1, 1)], dim=1)
        scores, alive = next_s[rows], alive[rows]
        if rows.numel() < n:  # finished sentences leave the batch
            mem_rows = (rows[:, None] * g + torch.arange(g, device=src.device)).view(-1)
            memory, memory_mask = memory[mem_rows], memory_mask[mem_rows]
            if cache is not None:
                model.reorder_cache(cache, mem_rows, "cross")
        if cache is not None:
            model.reorder_cache(cache, select, "self")

    model.train(was_training)
    return [max(hyps, key=lambda h: h[0])[1] if hyps else [] for hyps in finished]
