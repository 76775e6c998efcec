"""Run directories, atomic writes, and the W&B online/offline decision (made before ``wandb.init``)."""

from __future__ import annotations

import json
import netrc
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from tiedtransformer.errors import ConfigError

WandbMode = Literal["auto", "online", "offline", "disabled"]


@dataclass
class RunOptions:
    """Where a fit writes, and how it reaches W&B."""

    root: str = "runs"
    """Folder that holds one run directory per fit."""
    name: str | None = None
    """Run directory name (default: <date>-<time>-<tying>-<direction>)."""
    wandb: WandbMode = "auto"
    """W&B logging: auto (online with an API key and a reachable server, else offline), online,
    offline, or disabled (metrics.csv only). The WANDB_MODE environment variable wins."""
    wandb_project: str = "tiedtransformer"
    """W&B project."""
    wandb_entity: str | None = None
    """W&B entity (user or team); default: the key's default entity."""
    wandb_group: str | None = None
    """W&B group, e.g. one per sweep."""
    wandb_tags: list[str] = field(default_factory=list)
    """Extra W&B tags; tying mode and direction are always added."""


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file so that readers see the old content or the new one, never a part."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give it a normal file's mode
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj, sort_keys: bool = True) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys, default=str) + "\n")


def make_run_dir(root: str, name: str) -> Path:
    """Create a fresh run directory (a suffix keeps it unique) and prove it takes writes, so that a
    read-only or full disk fails now rather than at the first checkpoint."""
    base = Path(root).expanduser() / name
    run_dir, n = base, 1
    while run_dir.exists():
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    try:
        run_dir.mkdir(parents=True)
        probe = run_dir / ".write-test"
        with open(probe, "wb") as f:
            f.write(b"\0" * (1 << 20))
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            f"cannot write the run directory {run_dir}: {e.strerror or e}. Free disk space, fix permissions, "
            "or choose another folder with --run.root"
        ) from None
    return run_dir


def checkpoint_bytes(num_params: int) -> int:
    """About what one training checkpoint takes: fp32 weights and Adam's two moments per parameter."""
    return 12 * num_params


def check_free_space(run_dir: Path, checkpoint_size: int, copies: int = 3) -> None:
    """Fail now, not at the first checkpoint an hour in, if the run directory's disk cannot hold
    ``copies`` checkpoints (the best, last.ckpt, and one written on an interruption)."""
    needed, free = copies * checkpoint_size, shutil.disk_usage(run_dir).free
    if free < needed:
        raise ConfigError(
            f"the disk of the run directory {run_dir} has {free / 2**30:.2f} GiB free, but this run's checkpoints "
            f"need about {needed / 2**30:.2f} GiB ({copies} x {checkpoint_size / 2**30:.2f} GiB). Free disk space, or "
            "choose another folder with --run.root"
        )


def default_run_name(tying: str, direction: str, now: float | None = None) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{tying}-{direction}"


def wandb_api_key(env=os.environ) -> str | None:
    """The W&B key from WANDB_API_KEY or ~/.netrc, without importing wandb."""
    if env.get("WANDB_API_KEY"):
        return env["WANDB_API_KEY"]
    host = urlparse(env.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        auth = netrc.netrc(env.get("NETRC")).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None
    return auth[2] if auth else None


def wandb_reachable(env=os.environ, timeout: float = 3.0) -> bool:
    url = urlparse(env.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def decide_wandb_mode(requested: str, env=os.environ, has_key=None, reachable=None) -> tuple[str, str]:
    """(mode, reason): the mode to pass to W&B, decided up front so ``wandb.init`` never waits on a
    network that is not there. ``has_key`` / ``reachable`` are callables (injected by tests)."""
    has_key = has_key or (lambda: wandb_api_key(env) is not None)
    reachable = reachable or (lambda: wandb_reachable(env))
    forced = env.get("WANDB_MODE", "").strip().lower()
    if forced in ("disabled", "offline", "online", "dryrun"):
        return ("offline" if forced == "dryrun" else forced), "WANDB_MODE is set"
    if requested != "auto":
        return requested, "--run.wandb"
    if not has_key():
        return "offline", "no W&B API key (WANDB_API_KEY or `wandb login`)"
    if not reachable():
        return "offline", "the W&B server is unreachable"
    return "online", "API key found and server reachable"
