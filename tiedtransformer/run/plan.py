"""Where a fit's directory is and whether it resumes (:func:`resolve`, pure), and the W&B
online/offline decision (made before ``wandb.init``). What lies in a run directory: :mod:`.files`."""

from __future__ import annotations

import netrc
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from tiedtransformer.errors import ConfigError
from tiedtransformer.run.files import RunDir

WandbMode = Literal["auto", "online", "offline", "disabled"]

# How a fit's processes agree on their run directory: rank 0 decides it and sets these for the
# processes it starts (Lightning's DDP launcher re-runs the command line with its environment).
RUN_DIR_ENV = "TIEDTRANSFORMER_RUN_DIR"
RESUMING_ENV = "TIEDTRANSFORMER_RESUMING"
RUN_NAME_ENV = "TIEDTRANSFORMER_RUN_NAME"  # a sweep names each run's directory
RANK_ENVS = ("LOCAL_RANK", "RANK", "NODE_RANK", "SLURM_PROCID")


SWEEP_SEED = 0
"""The seed of a local sweep's random search (``tiedtransformer sweep --seed``)."""


@dataclass
class RunOptions:
    """Where a fit writes, and how it reaches W&B."""

    root: str = "runs"
    """Folder that holds one run directory per fit."""
    name: str | None = None
    """Run directory name (default: <date>-<time>-<tying>-<direction>). config.yaml records it, so that
    ``-c runs/X/config.yaml --ckpt_path last`` resumes run X (and ``-c`` without it starts X-2)."""
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


@dataclass(frozen=True)
class RunRequest:
    """What a fit's config says about its run directory (the inputs of :func:`resolve`)."""

    root: str = RunOptions.root
    name: str | None = None
    tying: str = "none"
    direction: str = "en-de"
    ckpt_path: str | None = None
    default_root_dir: str | None = None  # trainer.default_root_dir as the user set it
    checkpoint_dirpath: str | None = None  # checkpoint.dirpath as the user set it
    logger: object = None  # trainer.logger as the user set it


@dataclass(frozen=True)
class RunPlan:
    """Where a fit's process works, decided by :func:`resolve`."""

    run_dir: RunDir
    resuming: bool
    create: bool  # this process creates the directory (a new run, rank 0)
    placeholder: bool  # a process on another node: rank 0's directory is not known here; it writes nothing
    env: dict[str, str]  # what the processes it starts must find in their environment

    def announce(self) -> str:
        if self.placeholder:
            return "run directory: rank 0's (this process is on another node)"
        return f"run directory: {self.run_dir.path}" + (" (resuming)" if self.resuming else "")


def not_rank_zero(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the launcher says this process is not global rank 0: Lightning's own child processes
    and torchrun (LOCAL_RANK, RANK), another node under Lightning (NODE_RANK) or SLURM (SLURM_PROCID)."""
    return any(int(env.get(v) or 0) > 0 for v in RANK_ENVS)


def resolve(request: RunRequest, env: Mapping[str, str], now: float | None = None) -> RunPlan:
    """Decide a fit's run directory and whether it resumes. Reads the environment and, for
    ``--ckpt_path FILE``, whether the file exists and lies in a run's checkpoints/ folder; writes
    nothing. A user setting that the run directory decides (``trainer.default_root_dir``,
    ``checkpoint.dirpath``, ``trainer.logger``) and that says otherwise is a ConfigError.

    - a process started by rank 0 (DDP) takes rank 0's directory from ``env``;
    - ``--ckpt_path runs/X/checkpoints/F.ckpt`` resumes run X; a checkpoint from elsewhere starts a new run;
    - ``--ckpt_path last`` resumes ``run.root/run.name`` (the run's config.yaml records both);
    - otherwise a new directory ``run.root/<run.name, the sweep's name or date-time-tying-direction>``.
    """
    if request.logger not in (None, True):
        raise ConfigError(
            f"--trainer.logger={request.logger!r}: a fit logs to its run directory's {RunDir.METRICS} and to W&B; "
            "leave trainer.logger out, and choose W&B's mode with --run.wandb (auto, online, offline, disabled)"
        )
    child = not_rank_zero(env)
    resuming, path = False, None
    if child and env.get(RUN_DIR_ENV):
        path, resuming = Path(env[RUN_DIR_ENV]), env.get(RESUMING_ENV) == "1"
    elif request.ckpt_path == "last":
        if not request.name:
            raise ConfigError(
                "--ckpt_path last resumes the run named by --run.name: give the run's own config "
                f"(-c runs/X/{RunDir.CONFIG} records it), --run.name=X, or the checkpoint file "
                f"(--ckpt_path runs/X/{RunDir.CHECKPOINTS}/{RunDir.LAST}.ckpt)"
            )
        path, resuming = Path(request.root).expanduser() / request.name, True
        if not RunDir(path).checkpoints.is_dir():
            raise ConfigError(f"--ckpt_path last: {path} has no checkpoints/ folder to resume from")
    elif request.ckpt_path:
        ckpt = Path(request.ckpt_path)
        if not ckpt.is_file():
            raise ConfigError(f"--ckpt_path {request.ckpt_path}: no such checkpoint file")
        owner = RunDir(ckpt.resolve().parent.parent)
        if ckpt.resolve().parent.name == "checkpoints" and owner.is_run():
            path, resuming = owner.path, True
    placeholder = path is None and child
    create = path is None and not child
    if path is None:
        name = request.name or env.get(RUN_NAME_ENV) or default_run_name(request.tying, request.direction, now)
        path = Path(request.root).expanduser() / name
    run = RunDir(path)
    for option, given, wanted in (
        ("trainer.default_root_dir", request.default_root_dir, run.path),
        ("checkpoint.dirpath", request.checkpoint_dirpath, run.checkpoints),
    ):
        if given is not None and (create or Path(given).expanduser().resolve() != wanted.resolve()):
            raise ConfigError(
                f"--{option}={given}: a fit's files go to its run directory ({wanted} here), chosen with "
                "--run.root and --run.name; leave out --" + option + f" (a run's {RunDir.CONFIG} from an older version "
                "sets it: remove that line)"
            )
    env_out = {} if placeholder else {RUN_DIR_ENV: str(run.path), RESUMING_ENV: "1" if resuming else "0"}
    return RunPlan(run, resuming, create, placeholder, env_out)


def checkpoint_bytes(num_params: int) -> int:
    """About what one training checkpoint takes: fp32 weights and Adam's two moments per parameter."""
    return 12 * num_params


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
