"""Throughput of the whole input pipeline (reading, SentencePiece encoding, shuffling, token bucketing,
collation) on real text, against what training consumes on the same machine: the peer is our own
training step on the batches this pipeline makes, measured in the same process. Also reports the
padding fraction per batch.

    python -m benchmarks.data                                    # ../shared/data/multi30k/train
    python -m benchmarks.data --corpus ../shared/data/wmt-sample/train --model base

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import torch
from torch.utils.data import DataLoader

from benchmarks.train_step import ours  # the training step as TranslationModule takes it
from tiedtransformer.data.batching import padding_fraction
from tiedtransformer.data.datamodule import BatchStream, TranslationData

MODELS = {
    "multi30k": dict(d_model=256, n_heads=4, n_encoder_layers=3, n_decoder_layers=3, d_ff=1024),
    "base": dict(d_model=512, n_heads=8, n_encoder_layers=6, n_decoder_layers=6, d_ff=2048),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="../shared/data/multi30k/train", help="prefix X of X.en + X.de")
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--max-tokens", type=int, default=4096)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--model", choices=MODELS, default="multi30k")
    p.add_argument("--train-steps", type=int, default=5)
    args = p.parse_args()
    os.environ.setdefault("TIEDTRANSFORMER_CACHE", os.path.join(tempfile.gettempdir(), "tiedtransformer-bench"))
    dm = TranslationData(
        source="files",
        train_path=args.corpus,
        vocab_size=args.vocab_size,
        max_tokens=args.max_tokens,
        max_len=256,
        num_workers=args.workers,
        vocab_sample_size=200_000,
    )
    dm.setup(None)
    h = dm.hparams
    stream = BatchStream(
        dm.corpus("train"),
        dm.vocab,
        dm.direction,
        h.max_tokens,
        h.max_len,
        h.bucket_buffer,
        h.shuffle_buffer,
        True,
        h.seed,
        0,
        0,
        1,
    )
    t = time.perf_counter()
    batches = list(DataLoader(stream, batch_size=None, num_workers=args.workers))
    took = time.perf_counter() - t
    pairs = sum(len(b) for b in batches)
    tgt_tokens = sum(b.num_tgt_tokens for b in batches)
    all_tokens = tgt_tokens + sum(int((b.src != 0).sum()) for b in batches)
    pads = [padding_fraction(b) for b in batches]
    print(
        f"pipeline ({args.workers} worker(s)): {pairs} pairs in {len(batches)} batches, {took:.1f} s: "
        f"{pairs / took:,.0f} pairs/s, {all_tokens / took:,.0f} tokens/s ({tgt_tokens / took:,.0f} target tokens/s)"
    )
    print(
        f"padding per batch: mean {100 * statistics.mean(pads):.1f}%, p90 {100 * sorted(pads)[int(0.9 * len(pads))]:.1f}%, "
        f"max {100 * max(pads):.1f}%"
    )

    torch.manual_seed(0)
    _, _, step = ours({**MODELS[args.model], "vocab_size": args.vocab_size}, torch.device("cpu"))
    sample = sorted(batches, key=lambda b: b.num_tgt_tokens)[
        len(batches) // 2 : len(batches) // 2 + args.train_steps + 1
    ]
    timings = []
    for b in sample:
        t = time.perf_counter()
        step(b.src, b.tgt_in, b.tgt_out)
        timings.append((time.perf_counter() - t, b.num_tgt_tokens))
    timings = timings[1:]  # the first step warms up
    train_tps = sum(n for _, n in timings) / sum(s for s, _ in timings)
    ratio = (tgt_tokens / took) / train_tps
    print(
        f"training consumes {train_tps:,.0f} target tokens/s ({args.model} model, fp32, this machine): "
        f"the pipeline is {ratio:.0f}x faster (target >= 10x)"
    )
    print(
        json.dumps(
            {
                "benchmark": "data",
                "ours": round(tgt_tokens / took),
                "peer": round(train_tps),
                "unit": "target tokens/s",
                "ratio": round(ratio, 1),
                "peer_name": f"training step ({args.model})",
                "pairs_per_s": round(pairs / took),
                "padding_mean_pct": round(100 * statistics.mean(pads), 2),
                "corpus": args.corpus,
            }
        )
    )


if __name__ == "__main__":
    main()
