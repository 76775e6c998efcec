"""What padding the fused loss's rows costs or saves: training steps of the demo over its real batches,
with the loss's rows padded to a multiple of ``loss.ROW_MULTIPLE`` (ours, what training does in 16 bits) against
one row count per batch's token count (``row_multiple=1``, the code before the fix of issue 32).

Each round is one epoch of the demo's batches (a new shuffle each round, as in training), every
contestant with its own copy of the same initial model and optimizer, at both precisions (fp32 and
bf16 autocast). Under bf16 the unpadded contestant meets new row counts in every epoch, and each one
makes oneDNN build new matrix-product kernels: that cost is part of what is timed, as in a real run.
``ratio`` > 1: padding is faster.

    python -m benchmarks.loss_rows
    python -m benchmarks.loss_rows --rounds 7 --train_size 4000

One JSON line per precision.
"""

from __future__ import annotations

import argparse
import copy
import functools

import torch

from benchmarks.harness import compare, emit, interleaved, rates
from tiedtransformer.data.datamodule import TranslationData
from tiedtransformer.model import network
from tiedtransformer.model.loss import ROW_MULTIPLE, linear_label_smoothed_nll
from tiedtransformer.model.network import TiedTransformer, TransformerConfig

DEMO = dict(d_model=128, n_heads=4, n_encoder_layers=2, n_decoder_layers=2, d_ff=256, tying="three_way")


def epochs(dm: TranslationData, n: int) -> list[list]:
    """The demo's training batches of epochs 0 .. n-1 (made before anything is timed)."""
    return [list(dm.batch_stream("train", epoch)) for epoch in range(n)]


def contestant(net: TiedTransformer, epochs: list[list], row_multiple: int, bf16: bool):
    """At each call, the next epoch of training steps of ``net`` (its own AdamW), the loss's rows padded
    to ``row_multiple``."""
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loss = functools.partial(linear_label_smoothed_nll, row_multiple=row_multiple)
    todo = iter(epochs)

    def run() -> None:
        network.linear_label_smoothed_nll = loss  # what TiedTransformer.loss calls
        try:
            for b in next(todo):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    out = net.loss(b.src, b.tgt_in, b.tgt_out, 0.1)
                out.loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
        finally:
            network.linear_label_smoothed_nll = linear_label_smoothed_nll

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--train_size", type=int, default=2000, help="pairs of the demo corpus (one round = one epoch)")
    args = ap.parse_args()
    dm = TranslationData(
        source="demo", demo_train_size=args.train_size, demo_valid_size=10, vocab_size=500,
        vocab_sample_size=min(args.train_size, 20000), max_tokens=2048, max_len=64, num_workers=0,
    )  # fmt: skip
    dm.setup(None)
    data = epochs(dm, args.rounds + 1)  # one warm-up epoch, then one epoch a round
    tokens = sum(b.num_tgt_tokens for b in data[0])  # every epoch holds the same pairs
    for bf16 in (False, True):
        torch.manual_seed(0)
        base = TiedTransformer(TransformerConfig(vocab_size=500, **DEMO))
        seconds = interleaved(
            {
                "padded": contestant(copy.deepcopy(base), data, ROW_MULTIPLE, bf16),
                "per_count": contestant(copy.deepcopy(base), data, 1, bf16),
            },
            rounds=args.rounds,
        )
        result = compare(rates(seconds["padded"], tokens), rates(seconds["per_count"], tokens), higher_is_better=True)
        emit(
            "loss_rows",
            {"precision": "bf16-mixed" if bf16 else "32-true", "unit": "target tokens/s", **result},
            row_multiple=ROW_MULTIPLE,
            train_pairs=args.train_size,
        )


if __name__ == "__main__":
    main()
