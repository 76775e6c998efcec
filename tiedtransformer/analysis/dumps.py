"""Embedding dumps: a directory with ``embeddings.safetensors`` (one tensor per matrix name) and
``vocab.txt`` (one token per line, row order), written atomically; and reading them back, or the
same content straight from a Lightning checkpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tiedtransformer.atomic import atomic_dir
from tiedtransformer.errors import ConfigError, first_line
from tiedtransformer.model.network import TOKEN_MATRICES, first_tied, tied_groups
from tiedtransformer.run.files import DumpDir

MATRIX_NAMES = TOKEN_MATRICES  # what a dump may hold, in the experiment's order
SOURCE_SIDE = ("enc_embed", "enc_lut")  # rows are source tokens; the others are target tokens


@dataclass
class EmbeddingDump:
    matrices: dict[str, torch.Tensor]  # name -> (V, d); tied names map to the same tensor
    src_tokens: list[str]  # token text by row of enc_embed / enc_lut
    tgt_tokens: list[str]  # token text by row of dec_embed / dec_lut
    meta: dict = field(default_factory=dict)  # tying, direction, step, epoch, ...
    counts: dict[str, list[int] | None] | None = None  # "src"/"tgt" -> training frequency by row
    spm_models: dict[str, bytes] | None = None  # "src"/"tgt" -> SentencePiece model (splits words)

    @property
    def tied_with(self) -> dict[str, list[str]]:
        return tied_groups(self.matrices)

    def tokens(self, name: str) -> list[str]:
        return self.src_tokens if name in SOURCE_SIDE else self.tgt_tokens

    def side(self, name: str) -> str:
        return "src" if name in SOURCE_SIDE else "tgt"


def write_dump(path: str | Path, dump: EmbeddingDump, dtype: torch.dtype = torch.float32) -> Path:
    """Write ``dump`` to the directory ``path`` atomically: build it beside, then rename into place.
    A crash leaves the previous dump (or none), never half of one."""
    path = Path(path)
    with atomic_dir(path) as folder:
        tmp = DumpDir(folder)
        first = first_tied(dump.matrices)  # a tied matrix is stored once; the rest are aliases
        aliases = {name: f for name, f in first.items() if f is not None}
        stored = {
            name: t.detach().to("cpu", dtype).contiguous() for name, t in dump.matrices.items() if first[name] is None
        }
        save_file(stored, str(tmp.embeddings), metadata={"aliases": json.dumps(aliases)})
        tmp.vocab("tgt").write_text("".join(t + "\n" for t in dump.tgt_tokens), encoding="utf-8")
        if dump.src_tokens != dump.tgt_tokens:
            tmp.vocab("src").write_text("".join(t + "\n" for t in dump.src_tokens), encoding="utf-8")
        meta = {**dump.meta, "tied_with": dump.tied_with}
        tmp.meta.write_text(json.dumps(meta, indent=2, default=str))
        if dump.counts is not None:
            tmp.counts.write_text(json.dumps(dump.counts))
        for side, blob in (dump.spm_models or {}).items():
            if side == "tgt" or blob != dump.spm_models.get("tgt"):
                tmp.spm(side).write_bytes(blob)
    return path


def read_dump(path: str | Path) -> EmbeddingDump:
    """A dump directory, read as data (safetensors and text: nothing in it is executed) and checked: a
    file that is missing, truncated or not what :func:`write_dump` writes, a tensor that is missing or
    whose rows do not match its vocabulary, ends in a ConfigError naming the file."""
    path, d = Path(path), DumpDir(path)
    f = d.embeddings
    if not f.is_file():
        raise ConfigError(f"{path} is not an embedding dump: it has no {f.name}")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(f), framework="pt") as st:
            aliases = json.loads((st.metadata() or {}).get("aliases", "{}"))
        stored = load_file(str(f))
    except (SafetensorError, OSError, ValueError) as e:
        raise ConfigError(f"{f}: not a readable safetensors file ({first_line(e)}): truncated or corrupt") from None
    if not isinstance(aliases, dict) or any(b not in stored for b in aliases.values()):
        raise ConfigError(f"{f}: its metadata names tied matrices that the file does not hold ({aliases})")
    matrices = {**stored, **{a: stored[b] for a, b in aliases.items()}}
    meta = _read_json(d.meta, {})
    expected = meta.get("tied_with") if isinstance(meta, dict) else None
    for name in expected if isinstance(expected, dict) else ():
        if name in MATRIX_NAMES and name not in matrices:
            raise ConfigError(f"{f}: the {name} matrix is missing ({d.meta.name} lists it); the dump is incomplete")
    matrices = {n: matrices[n] for n in MATRIX_NAMES if n in matrices}
    if not matrices:
        raise ConfigError(f"{f}: holds none of the matrices {', '.join(MATRIX_NAMES)}")
    tgt = _read_lines(d.vocab("tgt"))
    src = _read_lines(d.vocab("src")) if d.vocab("src").is_file() else tgt
    dump = EmbeddingDump(matrices, src, tgt, meta, _read_json(d.counts, None), _models(d))
    for side, tokens in (("src", src), ("tgt", tgt)) if dump.counts is not None else ():
        c = dump.counts.get(side) if isinstance(dump.counts, dict) else "not a mapping"
        if c is not None and not (isinstance(c, list) and len(c) == len(tokens)):
            raise ConfigError(f"{d.counts}: needs one training count per {side} token ({len(tokens)})")
    for name, w in matrices.items():
        rows = len(dump.tokens(name))
        if w.dim() != 2 or not w.is_floating_point() or w.shape[0] != rows:
            vocab = d.vocab("src" if dump.tokens(name) is src and src is not tgt else "tgt").name
            raise ConfigError(
                f"{f}: the {name} matrix has shape {tuple(w.shape)} ({w.dtype}), but {vocab} has {rows} tokens: "
                "a dump holds one floating-point row per token"
            )
    return dump


def _read_lines(f: Path) -> list[str]:
    try:
        return f.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{f}: missing; a dump needs its vocabulary (one token per row)") from None
    except (UnicodeDecodeError, OSError) as e:
        raise ConfigError(f"{f}: not readable as UTF-8 text ({first_line(e)})") from None


def _read_json(f: Path, default):
    if not f.is_file():
        return default
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, OSError) as e:
        raise ConfigError(f"{f}: not valid JSON ({first_line(e)})") from None


def _models(d: DumpDir) -> dict[str, bytes] | None:
    if not d.spm("tgt").is_file():
        return None
    tgt = d.spm("tgt").read_bytes()
    src_model = d.spm("src")
    return {"tgt": tgt, "src": src_model.read_bytes() if src_model.is_file() else tgt}


def dump_from_model(net, vocabulary: dict, meta: dict) -> EmbeddingDump:
    """The four token matrices of a :class:`TiedTransformer` (through its one public method) with the
    vocabulary as the DataModule keeps it (``TranslationData.vocabulary_state``: ``vocab_tokens``, and
    optionally ``vocab_counts`` and ``vocab_models``, each ``{"src": ..., "tgt": ...}``)."""
    tokens = vocabulary["vocab_tokens"]
    return EmbeddingDump(
        net.token_matrices(),
        tokens["src"],
        tokens["tgt"],
        meta,
        vocabulary.get("vocab_counts"),
        vocabulary.get("vocab_models"),
    )


def read_checkpoint(path: str | Path) -> EmbeddingDump:
    """The dump of a ``fit`` checkpoint (which stores its vocabulary), loaded once and as data only."""
    from tiedtransformer.run.checkpoint import checkpoint_data, load_checkpoint, network_from_checkpoint

    ckpt = load_checkpoint(path)
    data = checkpoint_data(ckpt)
    if "vocab_tokens" not in data:
        raise ConfigError(f"{path} is not a tiedtransformer checkpoint (no vocabulary in it)")
    net = network_from_checkpoint(ckpt)
    meta = {
        "tying": net.cfg.tying,
        "step": ckpt.get("global_step"),
        "epoch": ckpt.get("epoch"),
        "direction": data.get("direction"),
        "source": str(path),
    }
    return dump_from_model(net, data, meta)


def read_any(path: str | Path) -> EmbeddingDump:
    p = Path(path)
    if p.is_dir():
        return read_dump(p)
    if p.is_file():
        return read_checkpoint(p)
    raise ConfigError(f"{path}: no such dump directory or checkpoint file")
