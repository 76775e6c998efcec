"""Does bf16 pay on this machine? fp32 against bf16 for the matrix products of a training step, and
the precision `tiedtransformer fit` picks when `trainer.precision` is not set.

    python -m benchmarks.precision

On the harness (``benchmarks.harness``): warm-up excluded, interleaved rounds, median and spread. "ours" is the precision the default picks here (bf16 only where
the CPU runs it natively), "peer" the other one; ``ratio`` is the peer's time over ours (> 1: the
default picked the faster one).
"""

from __future__ import annotations

import statistics

import torch

from benchmarks.harness import compare, emit, interleaved
from tiedtransformer.training.precision import NATIVE_BF16_CPU_FLAGS, cpu_flags, default_precision


def main() -> None:
    shapes = [(2048, 192, 768), (2048, 768, 192), (2048, 192, 6000)]  # FFN in/out and output layer of the recipe
    mats = {
        "fp32": [(torch.randn(m, k), torch.randn(k, n)) for m, k, n in shapes],
    }
    mats["bf16"] = [(a.bfloat16(), b.bfloat16()) for a, b in mats["fp32"]]

    def products(precision: str):
        return lambda: [a @ b for a, b in mats[precision]]

    seconds = interleaved({p: products(p) for p in mats}, rounds=5, warmup=1)
    chosen, why = default_precision("cpu")
    ours, peer = ("bf16", "fp32") if chosen.startswith("bf16") else ("fp32", "bf16")
    result = compare(seconds[ours], seconds[peer])
    ms = {p: round(1e3 * statistics.median(seconds[p]), 2) for p in mats}
    print(
        f"the recipe's three matrix products {', '.join(f'({m}x{k}) @ ({k}x{n})' for m, k, n in shapes)}: "
        f"fp32 {ms['fp32']} ms, bf16 {ms['bf16']} ms (medians of 5 interleaved rounds); bf16 takes "
        f"{ms['bf16'] / ms['fp32']:.1f}x fp32's time",
        flush=True,
    )
    print(
        f"default precision here: {chosen} ({why}); ratio (the other one's time over the default's) {result['ratio']}"
    )
    emit(
        "precision",
        {**result, "unit": "s per set of products"},
        ours_name=chosen,
        peer_name=peer,
        fp32_ms=ms["fp32"],
        bf16_ms=ms["bf16"],
        shapes=[list(s) for s in shapes],
        native_bf16_flags=sorted(set(NATIVE_BF16_CPU_FLAGS) & cpu_flags()),
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
    )


if __name__ == "__main__":
    main()
