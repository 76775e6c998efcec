"""Does our CPU dropout pay? The Multi30k recipe's training step with dropout 0.1 as ``layers.Dropout``
draws it (a mask from 16-bit slices of 64-bit random words, on a CPU) against ``torch.nn.Dropout``
(one Bernoulli draw an element), and the same step without dropout (what dropout costs at all).

    python -m benchmarks.dropout [--rounds 5]

The network is ``configs/multi30k.yaml``'s (d 192, 3+3, FFN 768, V 6,000, pre-norm, three-way tied,
fused loss), on the 24 recipe-shaped batches of ``benchmarks.precision``, at the precision `fit` picks
here (bf16 autocast where the CPU runs it natively, else fp32). Both dropouts train: same network, same
rate, only the mask's source differs. On the harness (``benchmarks.harness``): warm-up excluded,
interleaved rounds, median and spread; ``ratio`` is torch's time over ours (> 1: ours is faster).
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch import nn

from benchmarks.harness import compare, emit, interleaved, rates
from benchmarks.precision import recipe_batches, train_round
from benchmarks.train_step import SIZES
from benchmarks.train_step import ours as network_and_optimizer
from tiedtransformer.model.layers import Dropout
from tiedtransformer.training.precision import default_precision


def with_torch_dropout(net: nn.Module) -> nn.Module:
    """``net`` with every ``layers.Dropout`` replaced by ``torch.nn.Dropout`` of the same rate."""
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, Dropout):
                setattr(module, name, nn.Dropout(child.p))
    return net


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--dropout", type=float, default=0.1, help="the rate both dropouts train with")
    args = p.parse_args()
    precision, why = default_precision("cpu")
    bf16 = precision.startswith("bf16")
    batches = recipe_batches(24, SIZES["recipe"]["vocab_size"])
    tokens = sum(b[2].numel() for b in batches)

    def contestant(rate: float, torch_dropout: bool):
        torch.manual_seed(0)
        net, opt, _ = network_and_optimizer(SIZES["recipe"], "cpu", dropout=rate, norm_first=True)
        if torch_dropout:
            with_torch_dropout(net)

        return lambda: train_round(net, opt, batches, bf16)

    seconds = interleaved(
        {
            "ours": contestant(args.dropout, torch_dropout=False),
            "torch": contestant(args.dropout, torch_dropout=True),
            "none": contestant(0.0, torch_dropout=False),
        },
        rounds=args.rounds,
        warmup=1,
    )
    result = compare(seconds["ours"], seconds["torch"])
    tps = {name: round(statistics.median(rates(s, tokens))) for name, s in seconds.items()}
    print(
        f"recipe training steps at {precision} ({why}), {len(batches)} batches, {tokens:,} target tokens a round, "
        f"{args.rounds} interleaved rounds: dropout {args.dropout} ours {tps['ours']:,} target tok/s, torch.nn.Dropout "
        f"{tps['torch']:,}, no dropout {tps['none']:,}; ratio (torch's time over ours) {result['ratio']}",
        flush=True,
    )
    emit(
        "dropout_train_step",
        {**result, "unit": "s per round of 24 training steps"},
        ours_name="layers.Dropout",
        peer_name="torch.nn.Dropout",
        dropout=args.dropout,
        precision=precision,
        target_tok_per_s=tps,
        target_tokens_per_round=tokens,
    )


if __name__ == "__main__":
    main()
