"""Training-step throughput (forward + backward + Adam step, target tokens per second) of our
Transformer against Hugging Face ``MarianMTModel`` with identical dimensions, the same batch and the
same tying (three-way: Marian's shared encoder/decoder embeddings tied to the output layer), measured
in the same process on the same inputs, fp32 and bf16 autocast.

    python -m benchmarks.train_step                 # base (d 512, 6+6, FFN 2048, V 37000), batch 32 x 32
    python -m benchmarks.train_step --size small    # d 256, 3+3, FFN 1024, V 8000
    python -m benchmarks.train_step --size recipe   # d 192, 3+3, FFN 768, V 6000 (configs/multi30k.yaml)
    python -m benchmarks.train_step --device cuda   # on a GPU; also reports model FLOP utilisation

Needs the ``bench`` extra (transformers). Ends with one JSON line per precision.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from benchmarks.harness import compare, emit, interleaved, rates
from tiedtransformer.model.network import TiedTransformer, TransformerConfig
from tiedtransformer.specials import BOS_ID, EOS_ID, PAD_ID
from tiedtransformer.training.options import use_fused_loss
from tiedtransformer.training.precision import default_precision

SIZES = {
    "base": dict(d_model=512, n_heads=8, n_encoder_layers=6, n_decoder_layers=6, d_ff=2048, vocab_size=37000),
    "small": dict(d_model=256, n_heads=4, n_encoder_layers=3, n_decoder_layers=3, d_ff=1024, vocab_size=8000),
    # configs/multi30k.yaml: the shape the 15-minute CPU budget affords
    "recipe": dict(d_model=192, n_heads=4, n_encoder_layers=3, n_decoder_layers=3, d_ff=768, vocab_size=6000),
}


def ours(
    size: dict,
    device,
    fused_loss: bool | None = None,
    tying: str = "three_way",
    compile: bool = False,
    dropout: float = 0.1,
    norm_first: bool = False,
):
    """The network, its optimizer and our training step as ``TranslationModule`` takes it; ``fused_loss``
    as ``--model.optim.fused_loss`` (None: the device's default, fused on a CPU, whole logits on a GPU);
    ``compile`` as ``--model.compile=true``; ``dropout`` and ``norm_first`` as ``model.net.*`` (the
    defaults: Marian's, for the comparison here)."""
    fused_loss = use_fused_loss(fused_loss, torch.device(device).type)
    cfg = TransformerConfig(**size, tying=tying, dropout=dropout, norm_first=norm_first)
    net = TiedTransformer(cfg).to(device).train()
    if compile:
        net.compile_teacher_forcing()
    # fused, as TranslationModule takes it wherever no gradient scaler is at work (options.use_fused_adam)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, betas=(0.9, 0.98), weight_decay=0.0, fused=True)

    def step(src, tgt_in, tgt_out):
        loss = net.loss(src, tgt_in, tgt_out, 0.1, fused=fused_loss).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return net, opt, step


def marian(size: dict, device, dropout: float = 0.1, attention: str = "sdpa"):
    """A Marian of our shape and its training step; ``attention``: Transformers' attention implementation
    (``sdpa``, its default, or ``eager``: matmuls and softmax, which under CPU bf16 autocast run as autocast
    casts them)."""
    from transformers import MarianConfig, MarianMTModel

    cfg = MarianConfig(
        vocab_size=size["vocab_size"],
        decoder_vocab_size=size["vocab_size"],
        d_model=size["d_model"],
        encoder_layers=size["n_encoder_layers"],
        decoder_layers=size["n_decoder_layers"],
        encoder_attention_heads=size["n_heads"],
        decoder_attention_heads=size["n_heads"],
        encoder_ffn_dim=size["d_ff"],
        decoder_ffn_dim=size["d_ff"],
        dropout=dropout,  # where ours applies it: after attention, FFN and embeddings
        attention_dropout=0.0,
        activation_dropout=0.0,
        activation_function="relu",
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
        pad_token_id=PAD_ID,
        eos_token_id=EOS_ID,
        decoder_start_token_id=BOS_ID,
        max_position_embeddings=1024,
        attn_implementation=attention,
    )
    model = MarianMTModel(cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), weight_decay=0.0, fused=True)  # as ours
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=PAD_ID, label_smoothing=0.1)

    def step(src, tgt_in, tgt_out):
        logits = model(input_ids=src, attention_mask=src != PAD_ID, decoder_input_ids=tgt_in).logits
        loss_fn(logits.float().view(-1, logits.size(-1)), tgt_out.view(-1)).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return model, step


def timed_rounds(
    steps_to_time, batch, steps: int, warmup: int, rounds: int, device, autocast: bool
) -> list[list[float]]:
    """Seconds per step of each step function in each round: rounds of ``steps`` steps, interleaved by
    the harness after ``warmup`` untimed steps each."""
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if autocast else torch.autocast(device.type, enabled=False)

    def rounds_of(step):
        def run():
            for _ in range(steps):
                step(*batch)
            if device.type == "cuda":
                torch.cuda.synchronize()

        return run

    with ctx:
        seconds = interleaved({i: rounds_of(s) for i, s in enumerate(steps_to_time)}, rounds=rounds, warmup=warmup)
    return [[t / steps for t in seconds[i]] for i in range(len(steps_to_time))]


def timed(steps_to_time, batch, steps: int, warmup: int, rounds: int, device, autocast: bool) -> list[float]:
    """Median seconds per step of each step function (see :func:`timed_rounds`)."""
    return [statistics.median(r) for r in timed_rounds(steps_to_time, batch, steps, warmup, rounds, device, autocast)]


def unique_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def step_arguments(description: str) -> argparse.ArgumentParser:
    """The options of the training-step benchmarks (this one and tying.py)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=SIZES, default="base")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--len", type=int, default=32, help="source and target length")
    p.add_argument("--steps", type=int, default=2, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds; medians and spread are reported")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    return p


def random_batch(size: dict, args, device) -> tuple[tuple[torch.Tensor, ...], int]:
    """(source, shifted target, target) of random ids, full length, and its target token count."""
    torch.manual_seed(0)
    V = size["vocab_size"]
    src = torch.randint(4, V, (args.batch, args.len), device=device)
    tgt = torch.randint(4, V, (args.batch, args.len), device=device)
    tgt_in = torch.cat([torch.full((args.batch, 1), BOS_ID, device=device), tgt[:, :-1]], 1)
    return (src, tgt_in, tgt), args.batch * args.len


def main() -> None:
    p = step_arguments(__doc__)
    p.add_argument(
        "--precision",
        nargs="+",
        choices=["fp32", "bf16"],
        help="default: fp32, and bf16 autocast where the hardware runs bf16 natively (on a CPU without it a "
        "bf16 step takes tens of times as long and says nothing about either side)",
    )
    p.add_argument("--compile", action="store_true", help="also time ours with --model.compile=true")
    args = p.parse_args()
    device, size = torch.device(args.device), SIZES[args.size]
    if args.precision is None:
        native = default_precision("cuda" if device.type == "cuda" else "cpu")[0] == "bf16-mixed"
        args.precision = ["fp32", "bf16"] if native else ["fp32"]
    batch, tokens = random_batch(size, args, device)
    our_model, _, our_step = ours(size, device)
    # the other loss of --model.optim.fused_loss, named by what it is
    fused = use_fused_loss(None, device.type)
    extra = {"ours_fused_loss" if not fused else "ours_full_logits": ours(size, device, fused_loss=not fused)[2]}
    if args.compile:
        extra["ours_compiled"] = ours(size, device, compile=True)[2]
    # the peer's attention at its best: both of Transformers' implementations timed in the same rounds
    peers = {f"peer_{a}": marian(size, device, attention=a) for a in ("sdpa", "eager")}
    peer_model = peers["peer_sdpa"][0]
    print(
        f"{args.size}: ours {unique_params(our_model) / 1e6:.1f}M params, Marian {unique_params(peer_model) / 1e6:.1f}M; "
        f"batch {args.batch} x {args.len} tokens, {torch.get_num_threads()} threads, device {device}"
    )
    # non-embedding FLOPs per target token (6N rule, equal-length source) + output layer
    flops_per_token = 6 * unique_params(our_model)
    for precision in args.precision:
        bf16 = precision == "bf16"
        r_ours, *r_peers = timed_rounds(
            [our_step, *(step for _, step in peers.values()), *extra.values()],
            batch,
            args.steps,
            args.warmup,
            args.rounds,
            device,
            bf16,
        )
        r_peers, r_extra = r_peers[: len(peers)], r_peers[len(peers) :]
        peer_tps_each = {name: statistics.median(rates(r, tokens)) for name, r in zip(peers, r_peers)}
        best_peer = max(peer_tps_each, key=peer_tps_each.get)
        r_peer = r_peers[list(peers).index(best_peer)]
        result = compare(rates(r_ours, tokens), rates(r_peer, tokens), higher_is_better=True)
        ours_tps, peer_tps = result["ours"]["median"], result["peer"]["median"]
        extra_tps = {name: statistics.median(rates(r, tokens)) for name, r in zip(extra, r_extra)}
        line = (
            f"{precision}: ours {ours_tps:,.0f} tok/s ("
            + ", ".join(
                f"{name.removeprefix('ours_').replace('_', ' ')}: {tps:,.0f}" for name, tps in extra_tps.items()
            )
            + f"), Marian {peer_tps:,.0f} tok/s ({best_peer.removeprefix('peer_')} attention, its faster: "
            + ", ".join(f"{n.removeprefix('peer_')} {t:,.0f}" for n, t in peer_tps_each.items())
            + f"), ratio {result['ratio']:.2f} (medians of {args.rounds} rounds)"
        )
        record = {
            **result,
            "unit": "target tokens/s",
            **{name: round(tps, 1) for name, tps in extra_tps.items()},
            "peer_attention": best_peer.removeprefix("peer_"),
            "peer_tokens_per_s_by_attention": {n.removeprefix("peer_"): round(t, 1) for n, t in peer_tps_each.items()},
        }
        if device.type == "cuda":
            peak = 989e12 if bf16 else 67e12  # H100 SXM dense bf16 / fp32 (non-tensor-core) peak
            record["mfu"] = round(ours_tps * flops_per_token / peak, 4)
            line += f", MFU {record['mfu']:.1%}"
        print(line, flush=True)
        emit(
            f"train_step_{args.size}_{precision}",
            record,
            peer_name="MarianMTModel (its faster attention implementation)",
            device=str(device),
            batch=[args.batch, args.len],
        )


if __name__ == "__main__":
    main()
