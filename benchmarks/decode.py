"""Decoding throughput (sentences per second) of our batched beam search (beam 4) and greedy search
against Hugging Face ``MarianMTModel.generate`` with identical dimensions, the same sources and the
same output length for both (every hypothesis is made to run to exactly ``--out-len`` tokens, so that
neither side gains by stopping early on random weights). Also checks that our cached and uncached
decoding give identical output.

    python benchmarks/decode.py                    # base dimensions, 32 sentences of 24 tokens
    python benchmarks/decode.py --size small

Needs the ``bench`` extra (transformers). Ends with one JSON line per search.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from train_step import SIZES, marian  # sibling script
from tiedtransformer.model import TiedTransformer, TransformerConfig
from tiedtransformer.search import beam_search, greedy_decode
from tiedtransformer.specials import BOS_ID, EOS_ID, PAD_ID


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=SIZES, default="base")
    p.add_argument("--sentences", type=int, default=32)
    p.add_argument("--src-len", type=int, default=24)
    p.add_argument("--out-len", type=int, default=24, help="generated tokens per sentence, EOS included")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    device, size = torch.device(args.device), SIZES[args.size]
    torch.manual_seed(0)
    ours = TiedTransformer(TransformerConfig(**size, tying="three_way")).to(device).eval()
    peer, _ = marian(size, device)
    peer.eval()
    src = torch.randint(4, size["vocab_size"], (args.sentences, args.src_len), device=device)
    L = args.out_len

    # ours: a·|src| + b with a = 0 gives exactly L tokens once EOS is held back until then
    def our_beam(cache=True):
        return beam_search(ours, src, 4, 0.6, max_len_a=0.0, max_len_b=L, min_len=L, use_cache=cache)

    def our_greedy(cache=True):
        return greedy_decode(ours, src, max_len_a=0.0, max_len_b=L, min_len=L, use_cache=cache)

    def peer_generate(beams):
        with torch.no_grad():
            return peer.generate(input_ids=src, attention_mask=src != PAD_ID, num_beams=beams, max_new_tokens=L,
                                 min_new_tokens=L, length_penalty=0.6, early_stopping=True, do_sample=False,
                                 decoder_start_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID, use_cache=True)  # fmt: skip

    identical = our_beam(True) == our_beam(False) and our_greedy(True) == our_greedy(False)
    print(f"{args.size}: {args.sentences} sentences, source {args.src_len} tokens, output {L} tokens; "
          f"our cached and uncached outputs identical: {identical}")  # fmt: skip
    for name, mine, theirs in (("beam4", our_beam, lambda: peer_generate(4)), ("greedy", our_greedy, lambda: peer_generate(1))):
        t_ours, t_peer = timed(mine, args.repeats), timed(theirs, args.repeats)
        ours_sps, peer_sps = args.sentences / t_ours, args.sentences / t_peer
        print(f"{name}: ours {ours_sps:.1f} sentences/s, Marian generate {peer_sps:.1f} sentences/s, ratio {ours_sps / peer_sps:.2f}")
        print(json.dumps({"benchmark": f"decode_{args.size}_{name}", "ours": round(ours_sps, 2), "peer": round(peer_sps, 2),
                          "unit": "sentences/s", "ratio": round(ours_sps / peer_sps, 3), "peer_name": "MarianMTModel.generate",
                          "cached_equals_uncached": identical}))  # fmt: skip


if __name__ == "__main__":
    main()
