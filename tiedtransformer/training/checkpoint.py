"""Reading a checkpoint of ours: as data only (nothing in the file is executed), and the network in it."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from tiedtransformer.errors import ConfigError
from tiedtransformer.model.network import TiedTransformer, TransformerConfig

# The options that fix the network's parameters: checkpoints that differ in one cannot be averaged.
SHAPE_KEYS = (
    "tying",
    "vocab_size",
    "joint_vocab",
    "d_model",
    "n_heads",
    "n_encoder_layers",
    "n_decoder_layers",
    "d_ff",
    "projection_reg",
    "norm_first",
)


def network_options(hparams: dict) -> dict:
    """The network's options among a checkpoint's ``hyper_parameters`` (``net``; older checkpoints
    kept them at the top level)."""
    return hparams.get("net", hparams)


def shape_difference(a: dict, b: dict) -> tuple[str, object, object] | None:
    """The first option in ``SHAPE_KEYS`` that two checkpoints' ``hyper_parameters`` both set and set
    differently, as (key, a's value, b's value); None when their parameters have the same shapes and ties."""
    a, b = network_options(a), network_options(b)
    return next(((k, a[k], b[k]) for k in SHAPE_KEYS if k in a and k in b and a[k] != b[k]), None)


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint loaded as data only (``weights_only``: nothing in the file is executed)."""
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such checkpoint file") from None
    except pickle.UnpicklingError:
        raise ConfigError(
            f"{path}: not a readable checkpoint: it is no file torch.save wrote, or it holds Python objects "
            "besides tensors and plain data (nothing in it was executed)"
        ) from None
    except Exception as e:
        raise ConfigError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise ConfigError(f"{path}: not a tiedtransformer checkpoint (no state_dict or hyper_parameters)")
    return ckpt


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
