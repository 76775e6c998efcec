"""Checkpoint averaging: the element-wise mean of the weights of a run's last N checkpoints, as
fairseq's ``average_checkpoints.py``, Marian and OpenNMT offer, and as Vaswani et al. (2017, 6.1)
report their results (the last 5 checkpoints for base models).

The averaged file is the newest input checkpoint with its weights replaced (as fairseq does), so
``predict``, ``test``, ``analyze`` and ``fit --ckpt_path`` take it as any checkpoint of the run.
A tied matrix is averaged once and stays one tensor under all of its names.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from tiedtransformer.atomic import atomic_path
from tiedtransformer.errors import ConfigError
from tiedtransformer.run.checkpoint import checkpoint_data, load_checkpoint, shape_difference
from tiedtransformer.run.files import RunDir

_STEP = re.compile(r"step[-_=]?(\d+)")


def shared_groups(state: dict[str, torch.Tensor]) -> list[list[str]]:
    """Keys whose tensors are one storage (tied parameters), in first-seen order; untied keys alone."""
    groups: dict[tuple, list[str]] = {}
    for key, t in state.items():
        ident = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape)) if t.numel() else (key,)
        groups.setdefault(ident, []).append(key)
    return list(groups.values())


def average_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating-point tensors (accumulated in float64, returned in each tensor's
    dtype); other tensors (integer buffers) are taken from the last state. Keys that share a storage
    (tied) in every input share one averaged tensor in the result."""
    if not states:
        raise ValueError("nothing to average")
    first = states[0]
    groups = shared_groups(first)
    for i, s in enumerate(states[1:], 2):
        if s.keys() != first.keys():
            raise ValueError(f"state {i} has other keys: {sorted(s.keys() ^ first.keys())[:5]}")
        if sorted(map(sorted, shared_groups(s))) != sorted(map(sorted, groups)):
            raise ValueError(f"state {i} ties other tensors than state 1")
    out: dict[str, torch.Tensor] = {}
    for keys in groups:
        k = keys[0]
        ref = states[-1][k]
        if ref.is_floating_point():
            for i, s in enumerate(states, 1):
                if s[k].shape != ref.shape:
                    raise ValueError(f"{k}: shape {tuple(s[k].shape)} in state {i}, {tuple(ref.shape)} in the last")
            total = torch.zeros(ref.shape, dtype=torch.float64)
            for s in states:
                total += s[k].to(torch.float64)
            value = (total / len(states)).to(ref.dtype)
        else:
            value = ref.clone()
        for key in keys:
            out[key] = value
    return out


def checkpoint_step(path: Path) -> int | None:
    """The optimizer step in a checkpoint's file name (``epoch03-step1234.ckpt``), or None."""
    m = _STEP.search(path.stem)
    return int(m.group(1)) if m else None


def last_checkpoints(run_dir: str | Path, n: int) -> list[Path]:
    """The ``n`` newest step or epoch checkpoints of a run (by the step in their names, one file per
    step), oldest first. ``last*.ckpt`` and earlier averages are not candidates: they repeat a step."""
    folder = RunDir(run_dir).checkpoints
    if not folder.is_dir():
        raise ConfigError(f"{run_dir}: no checkpoints/ folder; give a run directory made by `tiedtransformer fit`")
    by_step: dict[int, Path] = {}
    for p in sorted(folder.rglob("*.ckpt")):
        step = checkpoint_step(p)
        if step is None or p.name.startswith(("last", "averaged")):
            continue
        by_step.setdefault(step, p)
    if len(by_step) < n:
        raise ConfigError(
            f"{folder} holds {len(by_step)} step or epoch checkpoints ({', '.join(p.name for p in by_step.values()) or 'none'}), "
            f"fewer than --last {n}. Keep more during fit with --average.last={n} (or --checkpoint.save_top_k=-1), "
            "or average fewer."
        )
    return [by_step[s] for s in sorted(by_step)[-n:]]


def average_checkpoints(paths: list[Path], out: str | Path) -> Path:
    """Average the weights of ``paths`` (all of one run shape and vocabulary) into ``out``, written
    atomically; everything else (optimizer state, loop progress, vocabulary) comes from the last."""
    if not paths:
        raise ConfigError("no checkpoints to average")
    ckpts = [load_checkpoint(p) for p in paths]
    base, last = ckpts[0], ckpts[-1]
    for p, c in zip(paths[1:], ckpts[1:]):
        if diff := shape_difference(base["hyper_parameters"], c["hyper_parameters"]):
            key, x, y = diff
            raise ConfigError(f"cannot average {paths[0]} and {p}: model.net.{key} is {x!r} in one, {y!r} in the other")
        if checkpoint_data(c).get("vocab_tokens") != checkpoint_data(base).get("vocab_tokens"):
            raise ConfigError(f"cannot average {paths[0]} and {p}: their vocabularies differ")
    try:
        state = average_state_dicts([c["state_dict"] for c in ckpts])
    except ValueError as e:
        raise ConfigError(f"cannot average {', '.join(map(str, paths))}: {e}") from None
    result = {**last, "state_dict": state, "averaged_from": [str(p) for p in paths]}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        torch.save(result, tmp)
    return out
