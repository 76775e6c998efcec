"""What an export starts from: a checkpoint of ours (or a run directory: its averaged checkpoint if it has
one, else its last), loaded as data only, with its network, vocabulary and the run's summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from tiedtransformer.errors import ConfigError
from tiedtransformer.model.network import TiedTransformer
from tiedtransformer.run.checkpoint import checkpoint_data, load_checkpoint, network_from_checkpoint
from tiedtransformer.run.files import RunDir
from tiedtransformer.run.summary import FitSummary


@dataclass
class Exportable:
    net: TiedTransformer  # eval mode, CPU, tied as trained
    tokens: dict[str, list[str]]  # "src" / "tgt": token text by id
    models: dict[str, bytes]  # "src" / "tgt": SentencePiece model files
    direction: str  # e.g. "en-de"
    checkpoint: Path
    summary: FitSummary  # the run's summary.json (empty if the checkpoint lies in no run directory)
    config_text: str  # the run's config.yaml ("" if none)

    @property
    def langs(self) -> tuple[str, str]:
        src, _, tgt = self.direction.partition("-")
        return src, tgt


def resolve_checkpoint(path: str | Path) -> Path:
    """A .ckpt file as given; a run directory: its averaged checkpoint, else its last."""
    p = Path(path)
    run = RunDir(p)
    if p.is_dir() and run.checkpoints.is_dir():
        for c in (run.averaged, run.last):
            if c.is_file():
                return c
        raise ConfigError(
            f"{p}: a run directory without {run.averaged.relative_to(p)} or {run.last.relative_to(p)} to export"
        )
    return p


def load_exportable(path: str | Path) -> Exportable:
    ckpt_path = resolve_checkpoint(path)
    ckpt = load_checkpoint(ckpt_path)  # data only: nothing in the file runs
    if "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise ConfigError(f"{ckpt_path}: not a checkpoint of tiedtransformer fit (no state_dict / hyper_parameters)")
    data = checkpoint_data(ckpt)
    tokens, models = data.get("vocab_tokens"), data.get("vocab_models")
    if not tokens or not models or not all(models.get(s) for s in ("src", "tgt")):
        raise ConfigError(f"{ckpt_path}: the checkpoint keeps no SentencePiece models, which an export needs")
    net = network_from_checkpoint(ckpt)
    run = RunDir.containing(ckpt_path)
    summary = (run.read_summary() if run else None) or FitSummary()
    config_text = run.config.read_text() if run and run.config.is_file() else ""
    return Exportable(net, tokens, models, str(data.get("direction") or "src-tgt"), ckpt_path, summary, config_text)


@torch.no_grad()
def reference_logprobs(net: TiedTransformer, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
    """Teacher-forced log-probabilities of our network, (B, T, V): what an export must reproduce."""
    memory, mask = net.encode(src)
    return torch.log_softmax(net.logits(net.decode(tgt_in, memory, mask)).float(), dim=-1)
