"""Decoding speed on real sentences: our batched beam search (beam 4) against Hugging Face
``MarianMTModel.generate`` with our weights and against CTranslate2 converted from that Marian copy, at each
of the settings it supports on the device (float32, int8, int8 with bf16, int16, bf16; ``--ct2-compute-types``), plus what each of our search's speed-ups gives (each turned off alone).

    python -m benchmarks.decode                            # makes its checkpoint, then times
    python -m benchmarks.decode --checkpoint runs/X/checkpoints/last.ckpt

The checkpoint: unless ``--checkpoint`` is given, ``configs/multi30k.yaml`` trained for a fixed
600 steps with seed 1, post-norm (Marian has no pre-norm) and lr 1e-3, into
``runs/benchmarks/decode-checkpoint`` (made once, reused). The sentences: the first ``--sentences``
of Multi30k ``val.en`` and of the WMT sample's ``valid.en`` (../shared/data), encoded with the
checkpoint's vocabulary, sorted by length, ``--batch`` at a time. All stop a sentence at EOS or after
``--out-len`` tokens; beam 4, length penalty 0.6 for all (ours is GNMT's ((5+n)/6)^α, Marian's and
CTranslate2's n^α: the outputs are compared too). Marian gets our weights converted (three-way
tied, post-norm; the script checks the teacher-forced logits); CTranslate2 gets that Marian copy
through its Transformers converter, with two changes our vocabulary needs (the decoder starts from
BOS's embedding, not a zero vector; PAD is id 0, not the last row). Threads: torch and CTranslate2
both use every core (CTranslate2 in a process of its own).

Rounds interleaved (``benchmarks.harness``); one JSON line per sentence set: sentences/s of each,
``ratio_generate`` (ours over generate) and ``ratio_ctranslate2`` (ours over CTranslate2 at its fastest
compute type, named in ``ctranslate2_fastest``; ``ratio_each_ctranslate2`` has every one; int8 changes the
outputs, ``identical_to_ours`` says how much), and per
speed-up the ratio of ours with everything over ours without it (> 1: the speed-up pays).

Needs the ``bench`` extra (transformers, ctranslate2).
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks.harness import compare, emit, fit_command, interleaved, rates, spread
from benchmarks.train_step import marian
from tiedtransformer.data.batching import Example, collate
from tiedtransformer.model.network import TiedTransformer, sinusoids
from tiedtransformer.model.search import SearchTricks, beam_search
from tiedtransformer.run.files import RunDir
from tiedtransformer.specials import BOS_ID, EOS_ID, PAD_ID, UNK_ID

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
SETS = {"multi30k_val": DATA / "multi30k" / "val.en", "wmt_sample_valid": DATA / "wmt-sample" / "valid.en"}
CHECKPOINT_RUN = REPO / "runs" / "benchmarks" / "decode-checkpoint"
CHECKPOINT_ARGS = [
    "--model.net.norm_first=false",  # Marian (and so its CTranslate2 copy) is post-norm
    "--model.optim.lr=1e-3",
    # the recipe's settings when the committed decode lines were made (it has since taken dropout 0.1 and
    # bf16 where native): the same checkpoint on any machine
    "--model.net.dropout=0.0",
    "--trainer.precision=32-true",
    "--trainer.max_steps=600",
    "--seed_everything=1",
    "--snapshot.every_n_epochs=0",
    "--snapshot.at_start=false",
    "--model.final_eval=false",
    "--run.wandb=disabled",
]


def make_checkpoint() -> Path:
    """The fixed-budget checkpoint of the module docstring, trained once."""
    ckpt = RunDir(CHECKPOINT_RUN).last
    if ckpt.is_file():
        return ckpt
    cmd = fit_command(
        str(REPO / "configs" / "multi30k.yaml"),
        *CHECKPOINT_ARGS,
        f"--run.root={CHECKPOINT_RUN.parent}",
        f"--run.name={CHECKPOINT_RUN.name}",
    )
    print("$ " + " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)
    return ckpt


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


def ctranslate2_copy(peer, pieces: list[str], out_dir: Path) -> Path:
    """CTranslate2's Transformers converter run on the Marian copy, fp32, into ``out_dir/ct2``. Its
    Marian loader assumes Marian's own vocabulary layout; ours differs in two places, changed in a
    subclass of it."""
    from ctranslate2.converters import transformers as ct2t

    class OurMarianLayout(ct2t.MarianMTLoader):
        def get_model_spec(self, model):  # Marian's drops a last <pad> row, which ours does not have
            model.config.normalize_before = model.config.normalize_embedding = False
            return ct2t.BartLoader.get_model_spec(self, model)

        def set_decoder(self, spec, decoder):  # ours starts from BOS's embedding, not from zeros
            ct2t.BartLoader.set_decoder(self, spec, decoder)

        def set_config(self, config, model, tokenizer):
            config.bos_token = config.decoder_start_token = pieces[BOS_ID]
            config.eos_token, config.unk_token = pieces[EOS_ID], pieces[UNK_ID]

        def get_vocabulary(self, model, tokenizer):
            return pieces

    class Converter(ct2t.TransformersConverter):
        def load_model(self, *args, **kwargs):  # the copy in memory: a saved one reloads with Marian's
            return peer  # own position table, not ours

        def load_tokenizer(self, *args, **kwargs):  # the vocabulary comes from our SentencePiece model
            return None

    marian_dir = out_dir / "marian"
    peer.config.save_pretrained(marian_dir)
    saved, ct2t._MODEL_LOADERS["MarianConfig"] = ct2t._MODEL_LOADERS["MarianConfig"], OurMarianLayout()
    try:
        Converter(str(marian_dir)).convert(str(out_dir / "ct2"), quantization="float32", force=True)
    finally:
        ct2t._MODEL_LOADERS["MarianConfig"] = saved
    return out_dir / "ct2"


def _ct2_worker(
    conn, model_dir: str, device: str, threads: int, batches_pieces, pieces_to_id, out_len: int, compute_type: str
) -> None:
    import ctranslate2

    translator = ctranslate2.Translator(model_dir, device=device, compute_type=compute_type, intra_threads=threads)
    while conn.recv():
        conn.send(ct2_search(translator, batches_pieces, pieces_to_id, out_len))


class Ct2Process:
    """CTranslate2 in a process of its own, as it runs in use: loaded into ours, its OpenMP runtime
    (a second libgomp) slowed our search by 30-60% on this machine, and ours slowed it."""

    def __init__(
        self,
        model_dir: Path,
        device: str,
        threads: int,
        batches_pieces,
        pieces_to_id,
        out_len: int,
        compute_type: str = "float32",
    ):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        args = (child, str(model_dir), device, threads, batches_pieces, pieces_to_id, out_len, compute_type)
        self.process = ctx.Process(target=_ct2_worker, args=args, daemon=True)
        self.process.start()

    def __call__(self) -> list[list[int]]:
        self.conn.send(True)
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send(False)
        self.process.join()


def ct2_search(translator, batches_pieces, pieces_to_id, out_len: int) -> list[list[int]]:
    """Beam 4; its length limit does not count EOS, ours does."""
    outs = []
    for b in batches_pieces:
        results = translator.translate_batch(
            b, beam_size=4, length_penalty=0.6, max_decoding_length=out_len - 1, max_batch_size=len(b)
        )
        outs += [[pieces_to_id[p] for p in r.hypotheses[0]] for r in results]
    return outs


def ct2_logprob_diff(model_dir: Path, net, src: torch.Tensor, tgt: torch.Tensor, pieces: list[str]) -> float:
    """Largest difference of CTranslate2's teacher-forced token log-probabilities from ours (checked in
    a child process: CTranslate2 is kept out of ours, see :class:`Ct2Process`)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_ct2_logprob_diff, (str(model_dir), copy.deepcopy(net).cpu(), src.cpu(), tgt.cpu(), pieces))


def _ct2_logprob_diff(model_dir: str, net, src: torch.Tensor, tgt: torch.Tensor, pieces: list[str]) -> float:
    import ctranslate2
    import torch.nn.functional as F

    translator = ctranslate2.Translator(model_dir, device="cpu", compute_type="float32")

    def as_pieces(t):
        return [[pieces[i] for i in row[row != PAD_ID].tolist()] for row in t]

    scored = translator.score_batch(as_pieces(src), as_pieces(tgt))
    tgt_in = torch.cat([torch.full_like(tgt[:, :1], BOS_ID), tgt], 1)
    tgt_out = torch.cat([tgt, torch.full_like(tgt[:, :1], EOS_ID)], 1)
    with torch.no_grad():
        ours = F.log_softmax(net(src, tgt_in).float(), -1).gather(2, tgt_out[..., None]).squeeze(-1)
    return float((torch.tensor([r.log_probs for r in scored]) - ours.cpu()).abs().max())


def sentence_set(path: Path, sp, n: int, batch: int, device) -> tuple[list[torch.Tensor], list[list[list[str]]]]:
    """The first ``n`` non-empty lines, encoded, sorted by length, in batches (tensors for ours and
    Marian, the same source tokens as piece lists for CTranslate2)."""
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()][:n]
    ids = sorted(sp.encode(lines), key=len)
    chunks = [ids[k : k + batch] for k in range(0, len(ids), batch)]
    tensors = [collate([Example(i, s, [], "") for i, s in enumerate(c)]).src.to(device) for c in chunks]
    pieces = [[[sp.id_to_piece(t) for t in row[row != PAD_ID].tolist()] for row in b.cpu()] for b in tensors]
    return tensors, pieces


def ct2_compute_types(device: str) -> list[str]:
    """Each of float32, int8, int8 with bf16, int16 and bf16 that CTranslate2 supports on the device (``int8``
    already keeps float32 for the rest on a CPU, so ``int8_float32`` is not timed apart)."""
    if device == "none":
        return []
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # CTranslate2 stays out of this process
        supported = pool.apply(_supported_compute_types, (device,))
    return [t for t in ("float32", "int8", "int8_bfloat16", "int16", "bfloat16") if t in supported]


def _supported_compute_types(device: str) -> set[str]:
    import ctranslate2

    return set(ctranslate2.get_supported_compute_types(device))


def main() -> None:
    import sentencepiece as spm

    from tiedtransformer.run.checkpoint import checkpoint_data, load_checkpoint, network_from_checkpoint

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="a fit checkpoint (three-way tied, post-norm); default: make one")
    p.add_argument("--sentences", type=int, default=500, help="sentences of each set")
    p.add_argument("--batch", type=int, default=64, help="sentences per batch")
    p.add_argument("--out-len", type=int, default=100, help="generated tokens per sentence at most, EOS included")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--ct2-threads",
        type=int,
        default=os.cpu_count(),
        help="CTranslate2 intra_threads (every core: its fastest here)",
    )
    p.add_argument(
        "--ct2-device",
        help="where CTranslate2 runs (default: --device); 'none' leaves it out, e.g. on a GPU whose CUDA its "
        "wheel was not built for (the PyPI wheel loads CUDA 12's libcublas.so.12)",
    )
    p.add_argument(
        "--ct2-compute-types",
        nargs="+",
        help="CTranslate2's compute types to time (default: each of float32, int8, int8_bfloat16, int16 and "
        "bfloat16 the device supports); the fastest is the peer of ratio_ctranslate2, every one is recorded",
    )
    p.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    args = p.parse_args()
    ct2_device = args.ct2_device or args.device
    missing = [str(SETS[s]) for s in args.sets if not SETS[s].is_file()]
    if missing:
        sys.exit(f"the sentences are read from ../shared/data next to the repository: {', '.join(missing)} missing")
    device = torch.device(args.device)
    ckpt_path = Path(args.checkpoint) if args.checkpoint else make_checkpoint()
    ckpt = load_checkpoint(ckpt_path)
    net = network_from_checkpoint(ckpt).to(device)
    peer = marian_with_weights_of(net)
    sp = spm.SentencePieceProcessor(model_proto=checkpoint_data(ckpt)["vocab_models"]["src"])
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    pieces_to_id = {piece: i for i, piece in enumerate(pieces)}
    tmp = tempfile.TemporaryDirectory(prefix="decode-bench-")
    if ct2_device != "none":
        with multiprocessing.get_context("spawn").Pool(1) as pool:  # CTranslate2 stays out of this process
            ct2_dir = pool.apply(ctranslate2_copy, (copy.deepcopy(peer).cpu(), pieces, Path(tmp.name)))
    L = args.out_len
    ct2_types = args.ct2_compute_types or ct2_compute_types(ct2_device)

    for name in args.sets:
        batches, batches_pieces = sentence_set(SETS[name], sp, args.sentences, args.batch, device)
        n = sum(b.size(0) for b in batches)
        with torch.no_grad():
            src, tgt = batches[0], batches[0][:, :8].clamp(min=4)
            diff = float(
                (net(src, tgt) - peer(input_ids=src, attention_mask=src != PAD_ID, decoder_input_ids=tgt).logits)
                .abs()
                .max()
            )

        ct2s, ct2_diff = {}, None
        if ct2_device != "none":
            for ct in ct2_types:
                key = "ctranslate2" if ct == "float32" else f"ctranslate2_{ct}"
                ct2s[key] = Ct2Process(ct2_dir, ct2_device, args.ct2_threads, batches_pieces, pieces_to_id, L, ct)
                ct2s[key]()  # a first pass loads it
            ct2_diff = ct2_logprob_diff(ct2_dir, net, batches[0][:8], batches[0][:8, :6].clamp(min=4), pieces)

        def ours(**off):
            return [
                o
                for b in batches
                for o in beam_search(net, b, 4, 0.6, max_len_a=0.0, max_len_b=L, tricks=SearchTricks(**off))
            ]

        contestants = {
            "ours": ours,
            "generate": lambda: [o for b in batches for o in generate(peer, b, 4, L)],
            **ct2s,
            **{f"ours_without_{t}": (lambda t=t: ours(**{t: False})) for t in SearchTricks.__dataclass_fields__},
        }
        outputs = {k: fn() for k, fn in contestants.items()}
        mine = outputs["ours"]
        same = {k: round(sum(a == b for a, b in zip(mine, o)) / n, 4) for k, o in outputs.items() if k != "ours"}
        print(
            f"{name}: {n} sentences of {SETS[name]} in batches of {args.batch}, at most {L} tokens out, mean "
            f"{sum(map(len, mine)) / n:.1f}; teacher-forced logits of ours and Marian differ by at most {diff:.1e}, "
            + (f"log-probabilities of ours and CTranslate2 (fp32) by {ct2_diff:.1e}; " if ct2s else "")
            + f"outputs identical to ours: {same}",
            flush=True,
        )
        seconds = interleaved(contestants, rounds=args.rounds, warmup=0)  # the output pass above warmed all up
        for proc in ct2s.values():
            proc.close()
        sps = {k: rates(v, n) for k, v in seconds.items()}
        for k, v in sps.items():
            print(f"  {k:32s} {spread(v)['median']:8.1f} sentences/s (min {min(v):.1f}, max {max(v):.1f})", flush=True)
        vs_generate = compare(seconds["ours"], seconds["generate"])
        # CTranslate2 at its strongest: the compute type with the fastest median, every one recorded
        fastest_ct2 = min(ct2s, key=lambda k: statistics.median(seconds[k])) if ct2s else None
        vs_ct2 = compare(seconds["ours"], seconds[fastest_ct2]) if ct2s else None
        vs_each_ct2 = {k: compare(seconds["ours"], seconds[k]) for k in ct2s}
        tricks = {t: compare(seconds["ours"], seconds[f"ours_without_{t}"]) for t in SearchTricks.__dataclass_fields__}
        print(
            f"  ours / generate {vs_generate['ratio']:.2f}x, "
            + (
                f"ours / CTranslate2 ({fastest_ct2}, its fastest) {vs_ct2['ratio']:.2f}x; "
                if ct2s
                else "CTranslate2 not run; "
            )
            + "each speed-up: "
            + ", ".join(f"{t} {r['ratio']:.2f}x" for t, r in tricks.items()),
            flush=True,
        )
        emit(
            f"decode_beam4_{name}",
            {
                "unit": "sentences/s",
                "sentences_per_s": {k: spread(v) for k, v in sps.items()},
                "ratio": vs_generate["ratio"],
                "ratio_generate": vs_generate,
                "ratio_ctranslate2": vs_ct2,
                "ctranslate2_fastest": fastest_ct2,
                "ratio_each_ctranslate2": vs_each_ct2,
                "speed_ups": tricks,
            },
            peer_name="MarianMTModel.generate (ratio); CTranslate2 at its fastest compute type (ratio_ctranslate2)",
            sentences=n,
            batch=args.batch,
            out_len=L,
            identical_to_ours=same,
            max_logit_diff=diff,
            max_logprob_diff_ctranslate2=ct2_diff,
            checkpoint=str(ckpt_path),
            device=args.device,
            ctranslate2_device=ct2_device,
            ctranslate2_compute_types=ct2_types,
        )


if __name__ == "__main__":
    main()
