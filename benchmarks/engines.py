"""Translating a file: our engine (``tiedtransformer translate``'s beam search) against CTranslate2 float32 and
int8 on the same sentences, from the same checkpoint (exported once, as ``--engine ctranslate2`` does).

    python -m benchmarks.engines RUN_DIR --input ../shared/data/multi30k/val.en --ref ../shared/data/multi30k/val.de

Speed: sentences/s of each engine on the first ``--sentences`` lines, rounds interleaved by the harness
(``--threads`` threads for each engine: ``torch.set_num_threads`` and CTranslate2's ``intra_threads``). Quality:
BLEU (sacreBLEU) of each engine's translation of the whole input, once. Ratios > 1: ours is faster. Ends with
one JSON line per CTranslate2 compute type (the peer), ours against it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from benchmarks.harness import MIN_ROUNDS, compare, emit, interleaved, rates
from tiedtransformer.export.source import load_exportable
from tiedtransformer.export.translate import Decoding, ctranslate2_model, translate_ctranslate2, translate_ours


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a run directory or a .ckpt")
    p.add_argument("--input", required=True)
    p.add_argument("--ref", required=True, help="reference translations of --input, for BLEU")
    p.add_argument("--sentences", type=int, default=200, help="lines timed per round")
    p.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--beam_size", type=int, default=4)
    args = p.parse_args()
    import sacrebleu
    import sentencepiece as spm

    torch.set_num_threads(args.threads)
    src = load_exportable(args.checkpoint)
    lines = [x.rstrip("\n") for x in open(args.input, encoding="utf-8")]
    refs = [x.rstrip("\n") for x in open(args.ref, encoding="utf-8")]
    ids = spm.SentencePieceProcessor(model_proto=src.models["src"]).encode([x.strip() for x in lines])
    d = Decoding(beam_size=args.beam_size)
    items = [(i, s[: d.max_len - 1]) for i, s in enumerate(ids)]
    timed = items[: args.sentences]
    ctranslate2_model(src)  # the export, once, outside the timing
    engines = {
        "ours": lambda xs: translate_ours(src, xs, d, lambda b: b),
        "ctranslate2_float32": lambda xs: translate_ctranslate2(src, xs, d, "float32", lambda b: b),
        "ctranslate2_int8": lambda xs: translate_ctranslate2(src, xs, d, "int8", lambda b: b),
    }
    with torch.inference_mode():
        seconds = interleaved({k: (lambda f=f: f(timed)) for k, f in engines.items()}, rounds=args.rounds)
        bleu, outputs = {}, {}
        for name, f in engines.items():
            hyps = dict(f(items))
            outputs[name] = [hyps[i] for i in range(len(lines))]
            bleu[name] = sacrebleu.corpus_bleu(outputs[name], [refs]).score
            Path(tempfile.gettempdir(), f"engines-{name}.txt").write_text("\n".join(outputs[name]) + "\n")
    speed = {k: rates(v, len(timed)) for k, v in seconds.items()}
    print(f"{len(timed)} sentences timed per round, {args.rounds} rounds; BLEU on all {len(lines)} lines")
    for name in engines:
        print(f"{name:>22}: {sorted(speed[name])[len(speed[name]) // 2]:7.1f} sentences/s, BLEU {bleu[name]:.2f}")
    for peer in ("ctranslate2_float32", "ctranslate2_int8"):
        emit(
            f"engines_{peer}",
            {**compare(speed["ours"], speed[peer], higher_is_better=True), "unit": "sentences/s"},
            peer_name=peer,
            bleu_ours=round(bleu["ours"], 2),
            bleu_peer=round(bleu[peer], 2),
            # the same beam search, length penalties aside (ours ((5+n)/6)^α, CTranslate2's n^α)
            identical_lines=sum(a == b for a, b in zip(outputs["ours"], outputs[peer])),
            lines=len(lines),
            sentences=len(timed),
            beam_size=args.beam_size,
            threads=args.threads,
            tying=src.net.cfg.tying,
            checkpoint=str(src.checkpoint),
        )


if __name__ == "__main__":
    main()
