"""Does bf16 pay on this machine? fp32 against bf16 for the matrix products of a training step and
for whole training steps of the Multi30k recipe's network, and the precision `tiedtransformer fit`
picks when `trainer.precision` is not set.

    python -m benchmarks.precision
    python -m benchmarks.precision --steps-only    # only the training steps

The training steps are those of `configs/multi30k.yaml` (d 192, 3+3, FFN 768, V 6,000, pre-norm, no
dropout, three-way tied, fused loss) on 24 batches of the recipe's size (about 1,024 target tokens,
sentences of 8 to 40 tokens, a new shape nearly every batch as length bucketing gives), timed as fp32,
bf16 autocast as `fit` runs it (attention in fp32 on a CPU: ``layers.attention``) and bf16 autocast with
attention in bf16 too (the code before that change: an ablation). That line's ``ratio`` is the other
precision's time over the default's.

On the harness (``benchmarks.harness``): warm-up excluded, interleaved rounds, median and spread. "ours" is the precision the default picks here (bf16 only where
the CPU runs it natively), "peer" the other one; ``ratio`` is the peer's time over ours (> 1: the
default picked the faster one).
"""

from __future__ import annotations

import argparse
import random
import statistics

import torch
import torch.nn.functional as F

from benchmarks.harness import compare, emit, interleaved, rates
from tiedtransformer.training.precision import NATIVE_BF16_CPU_FLAGS, cpu_flags, default_precision


def products_line() -> None:
    shapes = [(2048, 192, 768), (2048, 768, 192), (2048, 192, 6000)]  # FFN in/out and output layer of the recipe
    mats = {
        "fp32": [(torch.randn(m, k), torch.randn(k, n)) for m, k, n in shapes],
    }
    mats["bf16"] = [(a.bfloat16(), b.bfloat16()) for a, b in mats["fp32"]]

    def products(precision: str):
        return lambda: [a @ b for a, b in mats[precision]]

    seconds = interleaved({p: products(p) for p in mats}, rounds=5, warmup=1)
    chosen, why = default_precision("cpu")
    ours, peer = ("bf16", "fp32") if chosen.startswith("bf16") else ("fp32", "bf16")
    result = compare(seconds[ours], seconds[peer])
    ms = {p: round(1e3 * statistics.median(seconds[p]), 2) for p in mats}
    print(
        f"the recipe's three matrix products {', '.join(f'({m}x{k}) @ ({k}x{n})' for m, k, n in shapes)}: "
        f"fp32 {ms['fp32']} ms, bf16 {ms['bf16']} ms (medians of 5 interleaved rounds); bf16 takes "
        f"{ms['bf16'] / ms['fp32']:.1f}x fp32's time",
        flush=True,
    )
    print(
        f"default precision here: {chosen} ({why}); ratio (the other one's time over the default's) {result['ratio']}"
    )
    emit(
        "precision",
        {**result, "unit": "s per set of products"},
        ours_name=chosen,
        peer_name=peer,
        fp32_ms=ms["fp32"],
        bf16_ms=ms["bf16"],
        shapes=[list(s) for s in shapes],
        native_bf16_flags=sorted(set(NATIVE_BF16_CPU_FLAGS) & cpu_flags()),
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
    )


def recipe_batches(n: int, vocab_size: int, seed: int = 0) -> list[tuple[torch.Tensor, ...]]:
    """``n`` (source, shifted target, target) batches of random ids shaped like the recipe's: about 1,024
    tokens, sentence lengths 8-40, source and target lengths a few tokens apart."""
    from tiedtransformer.specials import BOS_ID

    rng, gen = random.Random(seed), torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        s = rng.randint(8, 40)
        t = max(4, s + rng.randint(-4, 4))
        b = 1024 // max(s, t)
        src = torch.randint(4, vocab_size, (b, s), generator=gen)
        tgt = torch.randint(4, vocab_size, (b, t), generator=gen)
        out.append((src, torch.cat([torch.full((b, 1), BOS_ID), tgt[:, :-1]], 1), tgt))
    return out


def train_round(net, opt, batches: list[tuple[torch.Tensor, ...]], bf16: bool) -> None:
    """One training step per batch as ``fit`` takes it on a CPU: bf16 autocast (when ``bf16``) around
    the forward pass only, as Lightning runs it, the fused loss, then the optimizer."""
    for src, tgt_in, tgt_out in batches:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = net.loss(src, tgt_in, tgt_out, 0.1, fused=True).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)


def train_steps_line(rounds: int) -> None:
    import tiedtransformer.model.layers as layers
    from benchmarks.train_step import SIZES
    from benchmarks.train_step import ours as network_and_optimizer

    batches = recipe_batches(24, SIZES["recipe"]["vocab_size"])
    tokens = sum(b[2].numel() for b in batches)
    ours_attention = layers.attention

    def bf16_attention(q, k, v, mask, is_causal):  # the code before layers.attention: SDPA as autocast leaves it
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)

    def contestant(autocast: bool, attention):
        torch.manual_seed(0)  # the recipe's network: pre-norm, no dropout
        net, opt, _ = network_and_optimizer(SIZES["recipe"], "cpu", dropout=0.0, norm_first=True)

        def run():
            layers.attention = attention
            try:
                train_round(net, opt, batches, autocast)
            finally:
                layers.attention = ours_attention

        return run

    seconds = interleaved(
        {
            "fp32": contestant(False, ours_attention),
            "bf16": contestant(True, ours_attention),
            "bf16_attention_bf16": contestant(True, bf16_attention),
        },
        rounds=rounds,
        warmup=1,
    )
    chosen, why = default_precision("cpu")
    ours, peer = ("bf16", "fp32") if chosen.startswith("bf16") else ("fp32", "bf16")
    result = compare(seconds[ours], seconds[peer])
    tps = {name: round(statistics.median(rates(s, tokens))) for name, s in seconds.items()}
    print(
        f"recipe training steps ({len(batches)} batches, {tokens:,} target tokens a round, {rounds} interleaved rounds): "
        f"fp32 {tps['fp32']:,} target tok/s, bf16 autocast {tps['bf16']:,}, bf16 with bf16 attention "
        f"{tps['bf16_attention_bf16']:,}; default here: {chosen} ({why}); ratio (the other one's time over the "
        f"default's) {result['ratio']}",
        flush=True,
    )
    emit(
        "precision_train_step",
        {**result, "unit": "s per round of 24 training steps"},
        ours_name=chosen,
        peer_name=peer,
        target_tok_per_s=tps,
        target_tokens_per_round=tokens,
        native_bf16_flags=sorted(set(NATIVE_BF16_CPU_FLAGS) & cpu_flags()),
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps-only", action="store_true", help="only the recipe's training steps")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    if not args.steps_only:
        products_line()
    train_steps_line(args.rounds)


if __name__ == "__main__":
    main()
