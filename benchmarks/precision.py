"""Does bf16 pay on this machine? fp32 against bf16 for the matrix products of a training step, and
the precision `tiedtransformer fit` picks when `trainer.precision` is not set.

    python -m benchmarks.precision

Interleaved rounds, median and spread. "ours" is the precision the default picks here (bf16 only where
the CPU runs it natively), "peer" the other one; ``ratio`` is the peer's time over ours (> 1: the
default picked the faster one).
"""

from __future__ import annotations

import json
import platform
import statistics
import time

import torch

from tiedtransformer.training.precision import NATIVE_BF16_CPU_FLAGS, cpu_flags, default_precision


def timed(a: torch.Tensor, b: torch.Tensor, repeats: int) -> float:
    a @ b  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return (time.perf_counter() - t) / repeats


def main() -> None:
    shapes = [(2048, 192, 768), (2048, 768, 192), (2048, 192, 6000)]  # FFN in/out and output layer of the recipe
    rounds, repeats = 5, 3
    rows = []
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        ab, bb = a.bfloat16(), b.bfloat16()
        fp32, bf16 = [], []
        for _ in range(rounds):  # interleaved
            fp32.append(timed(a, b, repeats))
            bf16.append(timed(ab, bb, 1))
        rows.append(
            {
                "shape": [m, k, n],
                "fp32_ms": round(statistics.median(fp32) * 1e3, 2),
                "bf16_ms": round(statistics.median(bf16) * 1e3, 2),
                "fp32_spread_ms": round((max(fp32) - min(fp32)) * 1e3, 2),
                "bf16_spread_ms": round((max(bf16) - min(bf16)) * 1e3, 2),
            }
        )
        r = rows[-1]
        print(
            f"({m}x{k}) @ ({k}x{n}): fp32 {r['fp32_ms']} ms, bf16 {r['bf16_ms']} ms (medians of {rounds})", flush=True
        )
    fp32_total = sum(r["fp32_ms"] for r in rows)
    bf16_total = sum(r["bf16_ms"] for r in rows)
    chosen, why = default_precision("cpu")
    print(f"default precision here: {chosen} ({why})")
    ours, peer = (bf16_total, fp32_total) if chosen.startswith("bf16") else (fp32_total, bf16_total)
    print(
        json.dumps(
            {
                "benchmark": "precision",
                "ours": round(ours, 2),
                "peer": round(peer, 2),
                "unit": "ms per matmul set",
                "ours_name": chosen,
                "ratio": round(peer / ours, 2),
                "fp32_ms": fp32_total,
                "bf16_ms": bf16_total,
                "shapes": rows,
                "default": chosen,
                "native_bf16_flags": sorted(set(NATIVE_BF16_CPU_FLAGS) & cpu_flags()),
                "torch": torch.__version__,
                "machine": platform.machine(),
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            }
        )
    )


if __name__ == "__main__":
    main()
