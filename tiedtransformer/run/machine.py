"""The machine a run or a benchmark ran on, as recorded beside its figures (``summary.json``, benchmark lines)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2]  # the checkout this package runs from (an editable install)


def machine() -> dict:
    """The machine the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    out = {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform(), "python": platform.python_version()}
    try:
        import torch

        out["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name()
    except ImportError:
        pass
    return out


def code_commit(where: Path = SOURCE) -> str | None:
    """The git commit of the checkout whose root is ``where``, with ``+`` when its tracked files differ from it;
    None where ``where`` is no checkout's root (an installed wheel, even in a venv inside some checkout), or git
    is missing or fails (then a clean commit could be a wrong one)."""
    try:
        top, head = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=where, capture_output=True, text=True, check=True
        ).stdout.split()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, ValueError, subprocess.CalledProcessError):
        return None
    if Path(top).resolve() != Path(where).resolve():
        return None
    return head + ("+" if dirty.stdout.strip() else "")
