"""Reading a checkpoint of ours: as data only (nothing in the file is executed), and the network in it."""

from __future__ import annotations

import dataclasses
import pickle
import re
from pathlib import Path

import torch

from tiedtransformer.errors import ConfigError, first_line
from tiedtransformer.model.network import TiedTransformer, TransformerConfig
from tiedtransformer.run.files import USE_OWN_CONFIG

# The options that fix the network's parameters (every field of TransformerConfig but those that do
# not): checkpoints that differ in one cannot be averaged.
NOT_SHAPE = ("dropout", "max_positions")  # max_positions sizes a buffer, not a parameter
SHAPE_KEYS = tuple(f.name for f in dataclasses.fields(TransformerConfig) if f.name not in NOT_SHAPE)


def network_options(hparams: dict) -> dict:
    """The network's options among a checkpoint's ``hyper_parameters`` (``net``; older checkpoints
    kept them at the top level)."""
    return hparams.get("net", hparams)


def shape_difference(a: dict, b: dict) -> tuple[str, object, object] | None:
    """The first option in ``SHAPE_KEYS`` that two checkpoints' ``hyper_parameters`` both set and set
    differently, as (key, a's value, b's value); None when their parameters have the same shapes and ties."""
    a, b = network_options(a), network_options(b)
    return next(((k, a[k], b[k]) for k in SHAPE_KEYS if k in a and k in b and a[k] != b[k]), None)


def load_checkpoint(path: str | Path, mmap: bool = False) -> dict:
    """A checkpoint of ours, loaded as data only: ``torch.load(weights_only=True)`` rebuilds tensors
    and plain containers and refuses anything else, so nothing in the file is executed. Every way a
    file can fail to be one (missing, empty, truncated, another program's, holding code) is a
    one-line ConfigError naming the file. ``mmap``: map the tensors instead of reading them (a cheap
    check of a large file). The one loader of ``analyze``, ``average``, ``predict``, ``test`` and
    ``fit --ckpt_path`` (Lightning's own loads go through ``checkpoint_io.CheckpointFiles``)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such checkpoint file")
    if path.is_dir():
        raise ConfigError(
            f"{path}: a directory, not a checkpoint file (checkpoints of ours are single .ckpt files; "
            "an embedding dump directory goes to `tiedtransformer analyze`)"
        )
    if path.stat().st_size == 0:
        raise ConfigError(f"{path}: the file is empty (0 bytes): its writing or copying was cut off")
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if not found:  # not a pickle at all (or a broken one)
            raise ConfigError(
                f"{path}: not a readable checkpoint: no file torch.save wrote, or a corrupt one "
                f"({path.stat().st_size:,} bytes); nothing in it was executed"
            ) from None
        what = f"a reference to {found.group(1)}"
        raise ConfigError(
            f"{path}: refused: it holds {what}, which no checkpoint of ours does (it may be another "
            "program's file, or crafted); nothing in it was executed"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError) as e:
        size, why = path.stat().st_size, first_line(e)
        why = "its zip directory, at the end of the file, is missing" if "central directory" in why else why
        raise ConfigError(
            f"{path}: not a complete checkpoint ({size:,} bytes; {why}): it is truncated or "
            "corrupt, or no file torch.save wrote. Copy it again, or use an earlier checkpoint"
        ) from None
    except Exception as e:  # the unpickler raises many types on garbage; none may escape as a traceback
        raise ConfigError(f"{path}: not a readable checkpoint ({type(e).__name__}: {first_line(e)})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ConfigError(f"{path}: not a tiedtransformer checkpoint (no state_dict in it)")
    if not isinstance(ckpt.get("hyper_parameters"), dict):
        raise ConfigError(f"{path}: not a tiedtransformer checkpoint (no hyper_parameters in it)")
    if not all(isinstance(v, torch.Tensor) for v in ckpt["state_dict"].values()):
        raise ConfigError(f"{path}: not a tiedtransformer checkpoint (its state_dict holds more than tensors)")
    return ckpt


def check_compatible(saved_hparams: dict, config: TransformerConfig, path: str | Path | None = None) -> None:
    """A checkpoint of another tying mode or network shape cannot continue this run or be evaluated
    with its config (the vocabulary is checked by the DataModule, which puts it into checkpoints)."""
    if diff := shape_difference(saved_hparams, {"net": dataclasses.asdict(config)}):
        key, saved, ours = diff
        where = f"{path}: " if path else ""
        raise ConfigError(
            f"{where}the checkpoint was trained with model.net.{key}={saved!r}, but this config has "
            f"model.net.{key}={ours!r}. {USE_OWN_CONFIG[:-1]} or start without --ckpt_path."
        )


def check_checkpoint(path: str | Path, config: TransformerConfig, direction: str | None = None) -> None:
    """Before anything is built: ``path`` is a complete checkpoint of ours (loaded as data, its tensors
    mapped, not read), of this config's network shape and tying, and of this direction."""
    ckpt = load_checkpoint(path, mmap=True)
    check_compatible(ckpt["hyper_parameters"], config, path)
    saved = checkpoint_data(ckpt).get("direction")
    if direction and saved and saved != direction:
        raise ConfigError(
            f"{path}: the checkpoint translates {saved}, but this config has data.direction={direction}. "
            + USE_OWN_CONFIG
        )


DATA_STATE_KEY = "TranslationData"
"""Where a checkpoint holds the DataModule's state (Lightning files it under the class's name)."""


def checkpoint_data(checkpoint: dict) -> dict:
    """The DataModule's part of a checkpoint (``TranslationData.state_dict``): vocabulary and direction.
    Checkpoints of older versions kept these keys at the top level."""
    return checkpoint.get(DATA_STATE_KEY) or {
        k: checkpoint[k] for k in ("vocab_tokens", "vocab_models", "vocab_counts", "direction") if k in checkpoint
    }


def network_from_checkpoint(ckpt: dict) -> TiedTransformer:
    """The trained network of a loaded checkpoint (eval mode, on the CPU), tied as it was trained."""
    fields = TransformerConfig.__dataclass_fields__
    net = TiedTransformer(
        TransformerConfig(**{k: v for k, v in network_options(ckpt["hyper_parameters"]).items() if k in fields})
    )
    state = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise ConfigError(
            f"the checkpoint's weights do not fit the network its options describe: {str(e)[:300]}"
        ) from None
    return net.eval()
