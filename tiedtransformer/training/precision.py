"""The default numeric precision: bf16 autocast where the hardware runs bf16 natively, fp32 elsewhere.

Without native bf16, the CPU's bf16 matrix products are many times slower than fp32's; with it they
are faster, and so are whole training steps under bf16 autocast (attention kept in fp32:
``layers.attention``). ``python -m benchmarks.precision`` measures both on the machine at hand.
"""

from __future__ import annotations

from pathlib import Path

import torch

NATIVE_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``); empty where they cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def choose_precision(on_cuda: bool, cuda_bf16: bool, flags: set[str]) -> tuple[str, str]:
    """(Lightning precision, why) for the device training will run on."""
    if on_cuda:
        if cuda_bf16:
            return "bf16-mixed", "the GPU runs bf16 natively"
        return "32-true", "the GPU has no bf16"
    native = sorted(set(NATIVE_BF16_CPU_FLAGS) & flags)
    if native:
        return "bf16-mixed", f"the CPU runs bf16 natively ({', '.join(native)})"
    return "32-true", "the CPU has no native bf16 (no AMX or AVX512-BF16), where bf16 autocast is many times slower"


def default_precision(accelerator: str | None) -> tuple[str, str]:
    """The precision ``trainer.precision`` gets when it is not set, for ``trainer.accelerator``."""
    on_cuda = torch.cuda.is_available() and accelerator in (None, "auto", "gpu", "cuda")
    return choose_precision(on_cuda, on_cuda and torch.cuda.is_bf16_supported(), cpu_flags())


def slow_bf16_warning(precision, accelerator: str | None) -> str | None:
    """A warning when bf16 is asked for on a CPU that does not run it natively, else None."""
    if not str(precision).startswith("bf16") or default_precision(accelerator)[0] == "bf16-mixed":
        return None
    if torch.cuda.is_available() and accelerator in (None, "auto", "gpu", "cuda"):
        return None
    return (
        f"warning: trainer.precision={precision} on a CPU without native bf16 (no AMX or AVX512-BF16): bf16 matrix "
        "products run many times slower than fp32 on such a CPU (python -m benchmarks.precision measures it). Leave "
        "trainer.precision unset for the fastest choice, or set it to 32-true."
    )
