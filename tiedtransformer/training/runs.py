"""The run directory: every path of a run (:class:`RunDir`), where a fit's directory is and whether
it resumes (:func:`resolve`, pure), and the W&B online/offline decision (made before ``wandb.init``).
Files are written through :mod:`tiedtransformer.atomic`.

A run directory holds::

    config.yaml            the resolved config (``-c`` it with ``--ckpt_path last`` to resume)
    checkpoints/           last.ckpt, the best, last-interrupted.ckpt; kept/ and averaged.ckpt (averaging)
    metrics.csv            resume-N/metrics.csv for the N-th resumption
    embeddings/step-N/     embedding dumps and their similarity reports
    final-val.<lang>       the final evaluation's translations
    summary.json           what the run did (written when fit ends or fails)
    trajectory.json        every snapshot's geometry against its nulls (tiedtransformer analyze RUN)
    similarity-final.json  only in a kept copy (docs/keep_runs.py): the last snapshot's report, trimmed
    wandb/                 W&B's files
"""

from __future__ import annotations

import json
import netrc
import os
import shutil
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from tiedtransformer.atomic import atomic_write_json, is_temporary
from tiedtransformer.errors import ConfigError

WandbMode = Literal["auto", "online", "offline", "disabled"]

# How a fit's processes agree on their run directory: rank 0 decides it and sets these for the
# processes it starts (Lightning's DDP launcher re-runs the command line with its environment).
RUN_DIR_ENV = "TIEDTRANSFORMER_RUN_DIR"
RESUMING_ENV = "TIEDTRANSFORMER_RESUMING"
RUN_NAME_ENV = "TIEDTRANSFORMER_RUN_NAME"  # a sweep names each run's directory
RANK_ENVS = ("LOCAL_RANK", "RANK", "NODE_RANK", "SLURM_PROCID")


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


class RunDir:
    """Every path of one run directory, and its lifecycle: :meth:`create`, :meth:`metrics_version`
    (resume), :meth:`write_summary` (finish). Cheap: callbacks make one from ``trainer.default_root_dir``."""

    SUMMARY = "summary.json"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def of(cls, trainer) -> RunDir:
        return cls(trainer.default_root_dir)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def kept(self) -> Path:
        """Checkpoints kept for averaging."""
        return self.checkpoints / "kept"

    @property
    def averaged(self) -> Path:
        return self.checkpoints / "averaged.ckpt"

    @property
    def summary(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def embeddings(self) -> Path:
        return self.path / "embeddings"

    @property
    def trajectory(self) -> Path:
        """The geometry of every snapshot against its nulls (``tiedtransformer analyze RUN``)."""
        return self.path / "trajectory.json"

    @property
    def final_similarity(self) -> Path:
        """The last snapshot's similarity report, trimmed to what the tables use (``docs/keep_runs.py``): what a
        kept copy of the run has in place of its dumps."""
        return self.path / "similarity-final.json"

    def snapshot(self, step: int) -> Path:
        """The embedding dump taken after optimizer step ``step``."""
        return self.embeddings / f"step-{step:08d}"

    def dumps(self) -> list[Path]:
        """Every embedding dump of the run, analysed or not, oldest first."""
        return sorted(p.parent for p in self.embeddings.glob("step-*/embeddings.safetensors"))

    @classmethod
    def containing(cls, path: str | Path) -> RunDir | None:
        """The run directory that a dump (``embeddings/step-N``) or checkpoint (``checkpoints/X.ckpt``,
        ``checkpoints/kept/X.ckpt``) lies in, if it lies in one."""
        p = Path(path).resolve()
        for parent in p.parents:
            if (parent / "summary.json").is_file() or (parent / "config.yaml").is_file():
                return cls(parent) if parent in (p.parent.parent, p.parent.parent.parent) else None
        return None

    def snapshots(self) -> list[Path]:
        """The embedding dumps that have a similarity report, oldest first."""
        return sorted(p.parent for p in self.embeddings.glob("step-*/similarity.json"))

    def final_translations(self, lang: str, stage: str = "val") -> Path:
        return self.path / f"final-{stage}.{lang}"

    def final_references(self, lang: str, stage: str = "test") -> Path:
        return self.path / f"final-{stage}.ref.{lang}"

    def metrics_files(self) -> list[Path]:
        """metrics.csv and those of the resumptions (resume-1/, resume-2/, ...), in order."""
        resumed = sorted(self.path.glob("resume-*/metrics.csv"), key=lambda p: int(p.parent.name.split("-")[1]))
        return [p for p in [self.path / "metrics.csv", *resumed] if p.is_file()]

    def metrics_version(self, resuming: bool) -> str:
        """CSVLogger's version folder: "" (metrics.csv in the run directory) for a new run; a resumed
        run logs into resume-N/ (CSVLogger would delete an existing metrics.csv)."""
        return f"resume-{1 + len(list(self.path.glob('resume-*')))}" if resuming else ""

    def read_summary(self) -> dict | None:
        try:
            return json.loads(self.summary.read_text())
        except (OSError, ValueError):
            return None

    def finished(self) -> bool:
        return (self.read_summary() or {}).get("status") == "finished"

    def write_summary(self, summary: dict) -> Path:
        atomic_write_json(self.summary, summary)
        return self.summary

    def is_run(self) -> bool:
        """Whether this looks like a directory ``tiedtransformer fit`` made."""
        return self.checkpoints.is_dir() and (self.summary.exists() or self.config.exists())

    def create(self) -> RunDir:
        """Create the directory (a suffix -2, -3, ... keeps it unique) and prove it takes writes, so that
        a read-only or full disk fails now rather than at the first checkpoint."""
        base, path, n = self.path.expanduser(), self.path.expanduser(), 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir(parents=True)
            probe = path / ".write-test"
            with open(probe, "wb") as f:
                f.write(b"\0" * (1 << 20))
                f.flush()
                os.fsync(f.fileno())
            probe.unlink()
        except OSError as e:
            raise ConfigError(
                f"cannot write the run directory {path}: {e.strerror or e}. Free disk space, fix permissions, "
                "or choose another folder with --run.root"
            ) from None
        return RunDir(path)

    def remove_if_empty(self) -> None:
        if self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()

    def remove_partial_writes(self) -> list[Path]:
        """Clear what a killed process left mid-write: the temporary files and folders of
        :func:`atomic_path` / :func:`atomic_dir` (``.NAME.xxxx`` beside NAME); a folder that was being
        replaced (``.NAME.old``) goes back to NAME if NAME is gone. Called when a run resumes; returns
        what it removed or restored."""
        touched = []
        for folder in (self.path, self.checkpoints, self.kept, self.embeddings):
            for p in sorted(folder.glob(".*")) if folder.is_dir() else ():
                if p.name.endswith(".old") and not (target := p.with_name(p.name[1:-4])).exists():
                    p.rename(target)
                elif p.name.endswith(".old") or is_temporary(p.name):
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
                else:
                    continue
                touched.append(p)
        return touched

    def last_checkpoint(self) -> Path | None:
        """The newest ``last*.ckpt`` in checkpoints/ (what ``--ckpt_path last`` resumes, by Lightning's
        rule: the file name starts with ``last``, newest by modification time), or None."""
        found = [p for p in self.checkpoints.glob("last*.ckpt") if p.is_file()]
        return max(found, key=lambda p: p.stat().st_mtime) if found else None

    def check_free_space(self, checkpoint_size: int, copies: int = 3) -> None:
        """Fail now, not at the first checkpoint an hour in, if the disk cannot hold ``copies``
        checkpoints (the best, last.ckpt, and one written on an interruption)."""
        needed, free = copies * checkpoint_size, shutil.disk_usage(self.path).free
        if free < needed:
            raise ConfigError(
                f"the disk of the run directory {self.path} has {free / 2**30:.2f} GiB free, but this run's "
                f"checkpoints need about {needed / 2**30:.2f} GiB ({copies} x {checkpoint_size / 2**30:.2f} GiB). "
                "Free disk space, or choose another folder with --run.root"
            )


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
            f"--trainer.logger={request.logger!r}: a fit logs to its run directory's metrics.csv and to W&B; "
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
                "(-c runs/X/config.yaml records it), --run.name=X, or the checkpoint file "
                "(--ckpt_path runs/X/checkpoints/last.ckpt)"
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
                "--run.root and --run.name; leave out --" + option + " (a run's config.yaml from an older version "
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
