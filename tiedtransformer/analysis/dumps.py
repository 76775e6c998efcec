"""Embedding dumps: a directory with ``embeddings.safetensors`` (one tensor per matrix name) and
``vocab.txt`` (one token per line, row order), written atomically; and reading them back, or the
same content straight from a Lightning checkpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tiedtransformer.errors import ConfigError
from tiedtransformer.model.network import first_tied, tied_groups
from tiedtransformer.training.runs import atomic_dir

MATRIX_NAMES = ("enc_embed", "enc_lut", "dec_embed", "dec_lut")
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
    with atomic_dir(path) as tmp:
        first = first_tied(dump.matrices)  # a tied matrix is stored once; the rest are aliases
        aliases = {name: f for name, f in first.items() if f is not None}
        stored = {
            name: t.detach().to("cpu", dtype).contiguous() for name, t in dump.matrices.items() if first[name] is None
        }
        save_file(stored, str(tmp / "embeddings.safetensors"), metadata={"aliases": json.dumps(aliases)})
        (tmp / "vocab.txt").write_text("".join(t + "\n" for t in dump.tgt_tokens), encoding="utf-8")
        if dump.src_tokens != dump.tgt_tokens:
            (tmp / "vocab.src.txt").write_text("".join(t + "\n" for t in dump.src_tokens), encoding="utf-8")
        meta = {**dump.meta, "tied_with": dump.tied_with}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        if dump.counts is not None:
            (tmp / "counts.json").write_text(json.dumps(dump.counts))
        for side, blob in (dump.spm_models or {}).items():
            if side == "tgt" or blob != dump.spm_models.get("tgt"):
                (tmp / ("spm.model" if side == "tgt" else "spm.src.model")).write_bytes(blob)
    return path


def read_dump(path: str | Path) -> EmbeddingDump:
    path = Path(path)
    f = path / "embeddings.safetensors"
    if not f.is_file():
        raise ConfigError(f"{path} is not an embedding dump: it has no embeddings.safetensors")
    from safetensors import safe_open

    with safe_open(str(f), framework="pt") as st:
        aliases = json.loads((st.metadata() or {}).get("aliases", "{}"))
    stored = load_file(str(f))
    matrices = {**stored, **{a: stored[b] for a, b in aliases.items()}}
    matrices = {n: matrices[n] for n in MATRIX_NAMES if n in matrices}
    tgt = (path / "vocab.txt").read_text(encoding="utf-8").splitlines()
    src_file = path / "vocab.src.txt"
    src = src_file.read_text(encoding="utf-8").splitlines() if src_file.is_file() else tgt
    meta = json.loads((path / "meta.json").read_text()) if (path / "meta.json").is_file() else {}
    counts = json.loads((path / "counts.json").read_text()) if (path / "counts.json").is_file() else None
    models = {}
    if (path / "spm.model").is_file():
        models["tgt"] = (path / "spm.model").read_bytes()
        src_model = path / "spm.src.model"
        models["src"] = src_model.read_bytes() if src_model.is_file() else models["tgt"]
    return EmbeddingDump(matrices, src, tgt, meta, counts, models or None)


def dump_from_model(net, src_tokens, tgt_tokens, meta: dict, counts=None, spm_models=None) -> EmbeddingDump:
    """The four token matrices of a :class:`TiedTransformer`, through its one public method."""
    return EmbeddingDump(net.token_matrices(), src_tokens, tgt_tokens, meta, counts, spm_models)


def read_checkpoint(path: str | Path) -> EmbeddingDump:
    """The dump of a ``fit`` checkpoint (which stores its vocabulary), loaded once and as data only."""
    from tiedtransformer.data.datamodule import checkpoint_data
    from tiedtransformer.training.checkpoint import load_checkpoint, network_from_checkpoint

    ckpt = load_checkpoint(path)
    data = checkpoint_data(ckpt)
    if "vocab_tokens" not in data:
        raise ConfigError(f"{path} is not a tiedtransformer checkpoint (no vocabulary in it)")
    net = network_from_checkpoint(ckpt)
    voc = data["vocab_tokens"]
    meta = {
        "tying": net.cfg.tying,
        "step": ckpt.get("global_step"),
        "epoch": ckpt.get("epoch"),
        "direction": data.get("direction"),
        "source": str(path),
    }
    return dump_from_model(net, voc["src"], voc["tgt"], meta, data.get("vocab_counts"), data.get("vocab_models"))


def read_any(path: str | Path) -> EmbeddingDump:
    p = Path(path)
    if p.is_dir():
        return read_dump(p)
    if p.is_file():
        return read_checkpoint(p)
    raise ConfigError(f"{path}: no such dump directory or checkpoint file")
