"""Does the fused AdamW pay? One ``opt.step()`` over the Multi30k recipe's parameters (d 192, 3+3, FFN
768, V 6,000, three-way tied: 4.3M), fused (one kernel, what ``TranslationModule`` takes wherever no
gradient scaler is at work) against ``foreach`` (a few multi-tensor ops, what it took before).

    python -m benchmarks.optimizer [--rounds 5] [--steps 50]

Both optimizers update identical copies of the network with the same gradients (AdamW (0.9, 0.98), no
weight decay, as the module). On the harness (``benchmarks.harness``): warm-up excluded, interleaved
rounds of ``--steps`` steps, median and spread; ``ratio`` is foreach's time over fused's (> 1: fused
is faster).
"""

from __future__ import annotations

import argparse
import copy
import statistics

import torch

from benchmarks.harness import compare, emit, interleaved
from benchmarks.train_step import SIZES
from tiedtransformer.model.network import TiedTransformer, TransformerConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=50, help="optimizer steps a round")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.manual_seed(0)
    net = TiedTransformer(TransformerConfig(**SIZES["recipe"], tying="three_way", norm_first=True)).to(args.device)
    for param in net.parameters():
        param.grad = 1e-3 * torch.randn_like(param)

    def contestant(kind: str):
        params = list(copy.deepcopy(net).parameters())  # deepcopy keeps the ties, not the gradients
        for mine, original in zip(params, net.parameters(), strict=True):
            mine.grad = original.grad.clone()
        opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.98), weight_decay=0.0, **{kind: True})

        def run():
            for _ in range(args.steps):
                opt.step()
            if args.device != "cpu":
                torch.cuda.synchronize()

        return run

    seconds = interleaved({"fused": contestant("fused"), "foreach": contestant("foreach")}, rounds=args.rounds)
    result = compare(seconds["fused"], seconds["foreach"])
    ms = {k: round(1e3 * statistics.median(v) / args.steps, 2) for k, v in seconds.items()}
    n = sum(p.numel() for p in net.parameters())
    print(
        f"AdamW step over the recipe's {n:,} parameters on {args.device}: fused {ms['fused']} ms, foreach "
        f"{ms['foreach']} ms (medians of {args.rounds} interleaved rounds of {args.steps} steps); ratio {result['ratio']}",
        flush=True,
    )
    emit(
        "adamw_step",
        {**result, "unit": f"s per {args.steps} optimizer steps"},
        ours_name="AdamW(fused=True)",
        peer_name="AdamW(foreach=True)",
        ms_per_step=ms,
        parameters=n,
        device=args.device,
    )


if __name__ == "__main__":
    main()
