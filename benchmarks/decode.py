"""Decoding throughput (sentences per second) of our batched beam search (beam 4) and greedy search
against Hugging Face ``MarianMTModel.generate``, measured in the same process on the same inputs.

Two modes:

* random weights (default): identical dimensions, the same sources and the same output length for
  both (every hypothesis is made to run to exactly ``--out-len`` tokens, so that neither side gains
  by stopping early on random weights). Also checks that our cached and uncached decoding give
  identical output.

      python benchmarks/decode.py                    # base dimensions, 32 sentences of 24 tokens
      python benchmarks/decode.py --size small

* a trained checkpoint on real sentences: Marian gets our weights (converted; three-way tied,
  post-norm, no projection matrix), which the script checks by comparing teacher-forced logits and
  greedy outputs. Sentences are encoded with the checkpoint's vocabulary, sorted by length and
  decoded ``--batch`` at a time; both stop at EOS (ours takes finished sentences out of the batch,
  ``generate`` keeps them until the whole batch is done) or after ``--out-len`` tokens.

      python benchmarks/decode.py --checkpoint runs/X/checkpoints/last.ckpt \\
          --source ../shared/data/multi30k/val.en --sentences 512

Needs the ``bench`` extra (transformers). Ends with one JSON line per search.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from train_step import SIZES, marian  # sibling script

from tiedtransformer.data.batching import Example, collate
from tiedtransformer.model.network import TiedTransformer, TransformerConfig, sinusoids
from tiedtransformer.model.search import beam_search, greedy_decode
from tiedtransformer.specials import BOS_ID, EOS_ID, PAD_ID


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def marian_with_weights_of(net: TiedTransformer):
    """A ``MarianMTModel`` (eval mode) computing the same function as ``net``: same dimensions, its
    token matrix as Marian's shared embedding and output layer, our position table, q/k/v split."""
    c = net.cfg
    if c.tying != "three_way" or c.norm_first or net.projection is not None:
        raise SystemExit("the Marian peer needs a three-way tied, post-norm network without a projection matrix")
    size = {
        k: getattr(c, k) for k in ("d_model", "n_heads", "n_encoder_layers", "n_decoder_layers", "d_ff", "vocab_size")
    }
    peer, _ = marian(size, next(net.parameters()).device)
    m = peer.model

    def attention(theirs, ours_w, ours_b, out):  # ours: q, k, v stacked along the output dimension
        for name, w, b in zip(("q_proj", "k_proj", "v_proj"), ours_w.chunk(3), ours_b.chunk(3)):
            getattr(theirs, name).weight.copy_(w)
            getattr(theirs, name).bias.copy_(b)
        theirs.out_proj.load_state_dict(out.state_dict())

    def feed_forward(theirs, ours):
        theirs.fc1.load_state_dict(ours.ffn[0].state_dict())
        theirs.fc2.load_state_dict(ours.ffn[2].state_dict())
        theirs.final_layer_norm.load_state_dict(ours.ffn_norm.state_dict())

    with torch.no_grad():
        m.shared.weight.copy_(net.dec_lut.weight)  # Marian ties its input tables and output layer to it
        for stack in (m.encoder, m.decoder):
            stack.embed_positions.weight.copy_(sinusoids(stack.embed_positions.weight.size(0), c.d_model))
        for ours, theirs in zip(net.encoder, m.encoder.layers):
            a = ours.self_attn
            attention(theirs.self_attn, a.qkv_proj.weight, a.qkv_proj.bias, a.out_proj)
            theirs.self_attn_layer_norm.load_state_dict(ours.self_norm.state_dict())
            feed_forward(theirs, ours)
        for ours, theirs in zip(net.decoder, m.decoder.layers):
            a, x = ours.self_attn, ours.cross_attn
            attention(theirs.self_attn, a.qkv_proj.weight, a.qkv_proj.bias, a.out_proj)
            theirs.self_attn_layer_norm.load_state_dict(ours.self_norm.state_dict())
            attention(
                theirs.encoder_attn,
                torch.cat([x.q_proj.weight, x.kv_proj.weight]),
                torch.cat([x.q_proj.bias, x.kv_proj.bias]),
                x.out_proj,
            )
            theirs.encoder_attn_layer_norm.load_state_dict(ours.cross_norm.state_dict())
            feed_forward(theirs, ours)
    return peer.eval()


def generate(peer, src, beams: int, out_len: int, min_len: int = 0) -> list[list[int]]:
    """``peer.generate`` with our search settings; outputs without BOS, EOS and padding, as ours."""
    with torch.no_grad():
        out = peer.generate(
            input_ids=src,
            attention_mask=src != PAD_ID,
            num_beams=beams,
            max_new_tokens=out_len,
            min_new_tokens=min_len,
            length_penalty=0.6,
            early_stopping=True,
            do_sample=False,
            decoder_start_token_id=BOS_ID,
            eos_token_id=EOS_ID,
            pad_token_id=PAD_ID,
            use_cache=True,
        )
    seqs = [s[1:] for s in out.tolist()]
    return [s[: s.index(EOS_ID)] if EOS_ID in s else [t for t in s if t != PAD_ID] for s in seqs]


def report(name: str, sentences: int, t_ours: float, t_peer: float, **extra) -> None:
    ours_sps, peer_sps = sentences / t_ours, sentences / t_peer
    print(
        f"{name}: ours {ours_sps:.1f} sentences/s, Marian generate {peer_sps:.1f} sentences/s, ratio {ours_sps / peer_sps:.2f}"
    )
    print(
        json.dumps(
            {
                "benchmark": f"decode_{name}",
                "ours": round(ours_sps, 2),
                "peer": round(peer_sps, 2),
                "unit": "sentences/s",
                "ratio": round(ours_sps / peer_sps, 3),
                "peer_name": "MarianMTModel.generate",
                **extra,
            }
        )
    )


def synthetic(args) -> None:
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

    identical = our_beam(True) == our_beam(False) and our_greedy(True) == our_greedy(False)
    print(
        f"{args.size}: {args.sentences} sentences, source {args.src_len} tokens, output {L} tokens; "
        f"our cached and uncached outputs identical: {identical}"
    )
    for name, mine, beams in (("beam4", our_beam, 4), ("greedy", our_greedy, 1)):
        t_ours, t_peer = timed(mine, args.repeats), timed(lambda: generate(peer, src, beams, L, L), args.repeats)
        report(f"{args.size}_{name}", args.sentences, t_ours, t_peer, cached_equals_uncached=identical)


def trained(args) -> None:
    import sentencepiece as spm

    from tiedtransformer.data.datamodule import checkpoint_data
    from tiedtransformer.training.checkpoint import load_checkpoint, network_from_checkpoint

    ckpt = load_checkpoint(args.checkpoint)
    net = network_from_checkpoint(ckpt)
    peer = marian_with_weights_of(net)
    sp = spm.SentencePieceProcessor(model_proto=checkpoint_data(ckpt)["vocab_models"]["src"])
    with open(args.source, encoding="utf-8") as f:
        lines = [line.strip() for line, _ in zip(f, range(args.sentences)) if line.strip()]
    ids = sorted(sp.encode(lines), key=len)
    batches = [
        collate([Example(i, s, [], "") for i, s in enumerate(ids[k : k + args.batch])]).src
        for k in range(0, len(ids), args.batch)
    ]
    with torch.no_grad():
        src, tgt = batches[0], batches[0][:, :8].clamp(min=4)
        diff = (
            (net(src, tgt) - peer(input_ids=src, attention_mask=src != PAD_ID, decoder_input_ids=tgt).logits)
            .abs()
            .max()
        )
    L = args.out_len
    runs = {
        "beam4": (lambda b: beam_search(net, b, 4, 0.6, max_len_a=0.0, max_len_b=L), lambda b: generate(peer, b, 4, L)),
        "greedy": (lambda b: greedy_decode(net, b, max_len_a=0.0, max_len_b=L), lambda b: generate(peer, b, 1, L)),
    }
    print(
        f"{args.checkpoint}: {len(lines)} sentences of {args.source} in batches of {args.batch}, at most {L} "
        f"tokens out; teacher-forced logits of ours and the converted Marian differ by at most {diff:.2e}"
    )
    for name, (mine, theirs) in runs.items():
        outs_ours = [o for b in batches for o in mine(b)]
        outs_peer = [o for b in batches for o in theirs(b)]
        same = sum(a == b for a, b in zip(outs_ours, outs_peer)) / len(outs_ours)
        mean_len = sum(map(len, outs_ours)) / len(outs_ours)
        print(f"{name}: identical outputs {same:.1%}, mean output {mean_len:.1f} tokens")
        t_ours = timed(lambda: [mine(b) for b in batches], args.repeats)
        t_peer = timed(lambda: [theirs(b) for b in batches], args.repeats)
        report(
            f"trained_{name}",
            len(lines),
            t_ours,
            t_peer,
            identical_outputs=round(same, 4),
            max_logit_diff=float(diff),
            batch=args.batch,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=SIZES, default="base", help="random weights: network dimensions")
    p.add_argument("--sentences", type=int, default=32)
    p.add_argument("--src-len", type=int, default=24, help="random weights: source tokens per sentence")
    p.add_argument(
        "--out-len",
        type=int,
        default=24,
        help="generated tokens per sentence (at most, with a checkpoint), EOS included",
    )
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--checkpoint", help="a fit checkpoint (three-way tied): decode real sentences with its weights")
    p.add_argument("--source", help="with --checkpoint: a file of source sentences, one per line")
    p.add_argument("--batch", type=int, default=64, help="with --checkpoint: sentences per batch")
    args = p.parse_args()
    if args.checkpoint:
        if not args.source:
            p.error("--checkpoint needs --source")
        trained(args)
    else:
        synthetic(args)


if __name__ == "__main__":
    main()
