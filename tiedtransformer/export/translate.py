"""``tiedtransformer translate``: a big file translated without a Trainer, by our search or by CTranslate2,
with ``predict``'s guarantees: one output line per input line, in order; a blank input line gives a blank
line; a line longer than ``max_len`` tokens is translated from its first ``max_len - 1`` and named in a
warning; a line that is not UTF-8 is an error naming it (or, with ``skip_invalid_utf8``, an empty line).

The CTranslate2 engine exports the checkpoint once (float32, cached under the project's cache folder by the
checkpoint's SHA-256) and loads it with the requested ``compute_type`` (int8 quantizes at load time). Its
beam search ranks finished hypotheses by n^α, ours by GNMT's ((5+n)/6)^α: beam outputs can differ."""

from __future__ import annotations

import functools
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from tiedtransformer.atomic import atomic_dir, atomic_write_text
from tiedtransformer.cache import cache_root
from tiedtransformer.data.batching import Example, collate, token_buckets
from tiedtransformer.data.corpus import output_lines, read_lines
from tiedtransformer.export.source import Exportable
from tiedtransformer.search_defaults import (
    BEAM_SIZE,
    LENGTH_PENALTY,
    MAX_LEN_A,
    MAX_LEN_B,
    TRANSLATE_MAX_LEN,
)


@dataclass(frozen=True)
class Decoding:
    beam_size: int = BEAM_SIZE
    length_penalty: float = LENGTH_PENALTY
    max_len_a: float = MAX_LEN_A
    max_len_b: int = MAX_LEN_B
    max_len: int = TRANSLATE_MAX_LEN  # source tokens (EOS included); longer lines are cut and named
    max_tokens: int = 4096  # source tokens per batch (our engine)
    batch_size: int = 32  # sentences per batch (CTranslate2)


def _processor(model: bytes):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=model)


def _sources(src: Exportable, lines: list[str | None], blank: set[int], keep: int):
    """(line index, source ids cut to ``keep``) of the lines with text, and the line numbers that were cut."""
    sp = _processor(src.models["src"])
    todo = [i for i in range(len(lines)) if i not in blank]
    ids = sp.encode([lines[i].strip() for i in todo])
    cut = [todo[k] + 1 for k, s in enumerate(ids) if len(s) > keep]
    return [(i, s[:keep]) for i, s in zip(todo, ids)], cut


def translate_ours(src: Exportable, items: list[tuple[int, list[int]]], d: Decoding, progress) -> list[tuple[int, str]]:
    from tiedtransformer.model.search import beam_search, greedy_decode

    sp = _processor(src.models["tgt"])
    examples = [Example(i, s, [], "") for i, s in items]
    out = []
    for batch in progress(list(map(collate, token_buckets(examples, d.max_tokens, len(examples) or 1, None)))):
        if d.beam_size > 1:
            hyps = beam_search(src.net, batch.src, d.beam_size, d.length_penalty, d.max_len_a, d.max_len_b)
        else:
            hyps = greedy_decode(src.net, batch.src, d.max_len_a, d.max_len_b)
        out += zip(batch.ids.tolist(), sp.decode(hyps))
    return out


def ctranslate2_model(src: Exportable) -> Path:
    """The checkpoint exported to CTranslate2 once, in the cache: keyed by the checkpoint file's SHA-256 and
    the versions of the exporter and of CTranslate2 (a newer one may write another model format)."""
    import ctranslate2

    import tiedtransformer
    from tiedtransformer.export.ct2 import export_ct2

    digest = hashlib.sha256(f"{tiedtransformer.__version__}/{ctranslate2.__version__}/".encode())
    with open(src.checkpoint, "rb") as f:  # in chunks: a checkpoint may be gigabytes
        for chunk in iter(lambda: f.read(1 << 24), b""):
            digest.update(chunk)
    digest = digest.hexdigest()[:20]
    where = cache_root() / "ctranslate2" / digest
    if not (where / "model.bin").is_file():  # exported beside, then renamed into place: never half a model
        with atomic_dir(where, replace=False) as tmp:
            export_ct2(src, tmp)
    return where


@functools.lru_cache(maxsize=4)
def _translator(model_dir: str, compute_type: str, threads: int):
    """A loaded CTranslate2 model, kept for the next call (loading is not translating), on as many threads as
    torch uses."""
    import ctranslate2

    return ctranslate2.Translator(model_dir, device="cpu", compute_type=compute_type, intra_threads=threads)


def translate_ctranslate2(
    src: Exportable, items: list[tuple[int, list[int]]], d: Decoding, compute_type: str, progress
) -> list[tuple[int, str]]:
    from tiedtransformer.export.ct2 import vocabulary

    translator = _translator(str(ctranslate2_model(src)), compute_type, torch.get_num_threads())
    vocab_in, tgt = vocabulary(src.tokens["src"]), _processor(src.models["tgt"])
    order = sorted(items, key=lambda x: len(x[1]))  # similar lengths together: less padding
    out = []
    for k in progress(range(0, len(order), d.batch_size)):
        chunk = order[k : k + d.batch_size]
        longest = max(len(s) + 1 for _, s in chunk)
        results = translator.translate_batch(
            [[vocab_in[t] for t in s] for _, s in chunk],
            beam_size=d.beam_size,
            length_penalty=d.length_penalty,
            # ours counts EOS in the limit and keeps within the position table
            max_decoding_length=max(
                1, min(int(longest * d.max_len_a + d.max_len_b), src.net.cfg.max_positions - 1) - 1
            ),
        )
        for (i, _), r in zip(chunk, results):
            out.append((i, tgt.decode_pieces(r.hypotheses[0])))
    return out


def translate_file(
    src: Exportable,
    input_path: str,
    output_path: Path,
    engine: str = "ours",
    compute_type: str = "default",
    decoding: Decoding = Decoding(),
    skip_invalid_utf8: bool = False,
    progress=lambda xs: xs,
) -> dict:
    lines = read_lines(input_path, skip_invalid_utf8, option="INPUT", skip_option="--skip_invalid_utf8")
    blank = {i for i, line in enumerate(lines) if line is None or not line.strip()}
    items, cut = _sources(src, lines, blank, decoding.max_len - 1)
    if cut:
        shown = ", ".join(map(str, cut[:10])) + (", ..." if len(cut) > 10 else "")
        print(
            f"warning: {input_path}: {len(cut)} of {len(lines)} lines have more than --max_len={decoding.max_len} "
            f"tokens (lines {shown}); each is translated from its first {decoding.max_len - 1} tokens",
            file=sys.stderr,
        )
    if lines.count(None):
        print(
            f"warning: {input_path}: {lines.count(None)} lines are not valid UTF-8 (--skip_invalid_utf8): their "
            "translations are empty lines",
            file=sys.stderr,
        )
    with torch.inference_mode():
        if engine == "ours":
            pairs = translate_ours(src, items, decoding, progress)
        else:
            pairs = translate_ctranslate2(src, items, decoding, compute_type, progress)
    text = output_lines(pairs, sorted(blank), len(lines))
    atomic_write_text(output_path, "".join(t + "\n" for t in text))
    return {"lines": len(lines), "blank": len(blank), "truncated": len(cut)}
