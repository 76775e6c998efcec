"""The similarity analysis of one token matrix, against its two peers.

1. ``tiedtransformer analyze`` of a dump holding one 37000×512 matrix, timed as a user runs it: the
   whole command (start-up, reading the dump, the analysis with its random null, writing the report
   and figures), against a whole Python process that reads the same file and runs FAISS's exact
   ``IndexFlatIP`` 10-NN of the matrix against itself. The random null depends on the matrix's shape
   only and is kept in a cache after the first analysis of a shape: the timed rounds find it there
   (the warm-up fills it), and the first analysis, with an empty cache, is timed apart (``cold_s``).
   Where the command's time goes: one more run of it, instrumented (``PHASES_PROCESS``: the command
   itself, with timestamps around its parts and the matrix products' time summed), in phases.
2. In one process, the analysis of ``--naive-n`` rows (``analyze_matrix``: top/bottom-1000 pairs,
   10-NN, histogram) against the naive way: the full similarity matrix, then ``torch.topk`` for the
   pairs (over the upper triangle) and for each row's neighbours, and ``torch.histc``.

    python -m benchmarks.similarity                      # 37000 x 512, as in the seed experiment
    python -m benchmarks.similarity --dump runs/X/embeddings/step-N --matrix dec_lut

Rounds interleaved (``benchmarks.harness``); two JSON lines. Needs the ``bench`` extra (faiss-cpu).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

from benchmarks.harness import compare, emit, interleaved
from tiedtransformer.analysis.similarity import analyze_matrix, normalize_rows
from tiedtransformer.run.files import DumpDir

FAISS_PROCESS = """
import sys, faiss, numpy as np
from safetensors.numpy import load_file
x = load_file(sys.argv[1])[sys.argv[2]].astype(np.float32)
x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
index = faiss.IndexFlatIP(x.shape[1])
index.add(x)
scores, ids = index.search(x, int(sys.argv[3]) + 1)  # +1: each row finds itself first
"""


# `tiedtransformer analyze` as `python -m tiedtransformer` runs it, with the time of its parts written to
# argv[1] as JSON: seconds from the start to each mark, and the matrix products' seconds summed
PHASES_PROCESS = """
import json, sys, time
start = time.perf_counter()
marks, products = {}, [0.0]
import tiedtransformer
import torch  # the command imports it once it reads the dump; counted here as start-up
marks["imported"] = time.perf_counter() - start
from tiedtransformer.analysis import report
mm = torch.mm
def timed_mm(*args, **kwargs):
    t = time.perf_counter()
    out = mm(*args, **kwargs)
    products[0] += time.perf_counter() - t
    return out
torch.mm = timed_mm
analyze_dump = report.analyze_dump
def timed_analysis(*args, **kwargs):
    marks["analysis_start"] = time.perf_counter() - start
    out = analyze_dump(*args, **kwargs)
    marks["analysis_end"] = time.perf_counter() - start
    return out
report.analyze_dump = timed_analysis
out_file, sys.argv = sys.argv[1], ["tiedtransformer", *sys.argv[2:]]
from tiedtransformer.cli import run
run()
marks["returned"] = time.perf_counter() - start
marks["products"] = products[0]
open(out_file, "w").write(json.dumps(marks))
"""


def phases(marks: dict, wall: float) -> dict[str, float]:
    """The whole command's seconds by phase, from ``PHASES_PROCESS``'s marks and the process's wall time."""
    return {
        "start-up and imports": marks["imported"],
        "parsing the options, reading the dump": marks["analysis_start"] - marks["imported"],
        "matrix products": marks["products"],
        "the rest of the analysis": marks["analysis_end"] - marks["analysis_start"] - marks["products"],
        "report, k-NN lists, figures": marks["returned"] - marks["analysis_end"],
        "exit": wall - marks["returned"],
    }


def matrix(args) -> torch.Tensor:
    if args.dump:
        from tiedtransformer.analysis.dumps import read_dump

        return read_dump(args.dump).matrices[args.matrix].float()
    g = torch.Generator().manual_seed(0)
    # embedding-like: a few shared directions plus noise, so that there are real near neighbours
    basis = torch.randn(64, args.d, generator=g)
    return torch.randn(args.n, 64, generator=g) @ basis * 0.3 + torch.randn(args.n, args.d, generator=g)


def naive(w: torch.Tensor, top_k: int, knn_k: int) -> None:
    """What one writes without thinking about memory: the whole V×V matrix, then topk."""
    x = normalize_rows(w)
    sim = x @ x.T
    upper = torch.ones_like(sim, dtype=torch.bool).triu_(1)
    pairs = sim[upper]  # the V(V-1)/2 pair cosines
    pairs.topk(top_k)
    pairs.topk(top_k, largest=False)
    torch.histc(pairs.clamp(-1, 1), bins=200, min=-1, max=1)
    sim.fill_diagonal_(float("-inf"))
    sim.topk(knn_k, dim=1)


NAIVE_BYTES_PER_PAIR = 10  # the fp32 matrix, its bool mask and the gathered pairs with their clamped copy


def available_bytes(device: torch.device) -> int:
    """Free memory of the GPU, or MemAvailable of Linux's /proc/meminfo; 8 GB where it cannot be read."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def whole_commands(w: torch.Tensor, args) -> None:
    from tiedtransformer.analysis.dumps import EmbeddingDump, write_dump

    tmp = Path(tempfile.mkdtemp(prefix="similarity-bench-"))
    tokens = [f"t{i}" for i in range(w.size(0))]
    dump = write_dump(tmp / "dump", EmbeddingDump({args.matrix: w}, tokens, tokens, meta={}))
    env = {**os.environ, "TIEDTRANSFORMER_CACHE": str(tmp / "cache")}
    ours_cmd = [
        *[sys.executable, "-m", "tiedtransformer", "analyze", str(dump), f"--out={tmp / 'out'}"],
        f"--analysis.device={args.device}",
    ]
    peer_cmd = [sys.executable, "-c", FAISS_PROCESS, str(DumpDir(dump).embeddings), args.matrix, "10"]

    quiet = {"check": True, "env": env, "stdout": subprocess.DEVNULL, "cwd": tmp}

    def run(cmd):
        return lambda: subprocess.run(cmd, **quiet)

    t = time.perf_counter()
    run(ours_cmd)()  # the first analysis of this shape: the null is computed and cached
    cold = time.perf_counter() - t
    seconds = interleaved({"ours": run(ours_cmd), "faiss": run(peer_cmd)}, rounds=args.rounds, warmup=1)
    result = compare(seconds["ours"], seconds["faiss"])
    print(
        f"whole commands, {tuple(w.shape)}: tiedtransformer analyze on {args.device} {result['ours']['median']:.2f} s "
        f"(first, computing the null: {cold:.2f} s), FAISS process {result['peer']['median']:.2f} s, "
        f"ratio {result['ratio']:.2f} (goal >= 1.0)",
        flush=True,
    )
    marks_file = tmp / "marks.json"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", PHASES_PROCESS, str(marks_file), *ours_cmd[3:]], **quiet)
    by_phase = {k: round(v, 2) for k, v in phases(json.loads(marks_file.read_text()), time.perf_counter() - t).items()}
    print("  by phase (one instrumented run): " + ", ".join(f"{k} {v:.2f} s" for k, v in by_phase.items()))
    shutil.rmtree(tmp, ignore_errors=True)
    emit(
        "similarity_whole_command",
        {**result, "unit": "s", "cold_s": round(cold, 2), "phases_s": by_phase},
        peer_name="python process: safetensors read + faiss.IndexFlatIP exact 10-NN",
        shape=list(w.shape),
        command=" ".join(ours_cmd[1:3] + ["analyze", "DUMP", ours_cmd[-1]]),
        device=args.device,
    )


def synced_on(device: torch.device, fn):
    """``fn`` as a round's work: on a GPU it ends when the device has finished."""

    def run():
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return run


def vs_naive(w: torch.Tensor, n: int, args, benchmark: str, digits: int = 2) -> None:
    """Ours against the naive way on the first ``n`` rows of ``w``, in this process: one JSON line."""
    device = torch.device(args.device)
    sub = w[:n].to(device)
    synced = partial(synced_on, device)
    seconds = interleaved(
        {
            "ours": synced(lambda: analyze_matrix(sub, top_k=1000, knn_k=10, bins=200)),
            "naive": synced(lambda: naive(sub, 1000, 10)),
        },
        rounds=args.rounds,
        warmup=1,
    )
    result = compare(seconds["ours"], seconds["naive"])
    print(
        f"in one process on {args.device}, {n} rows: ours {result['ours']['median']:.{digits}f} s, naive (full "
        f"matrix + torch.topk) {result['peer']['median']:.{digits}f} s, ratio {result['ratio']:.2f}",
        flush=True,
    )
    emit(
        benchmark,
        {**result, "unit": "s"},
        peer_name="full similarity matrix + torch.topk (pairs, rows) + torch.histc",
        shape=list(sub.shape),
        device=args.device,
    )


def small_matrices(w: torch.Tensor, args) -> None:
    """Matrices of a few thousand rows (the recipe's vocabulary is 6,000), where the naive way's V×V matrix fits
    in memory easily: is tiling still the faster way there? (Taking one tile, the whole product at once, was
    slower on this CPU: the lab notebook.)"""
    for n in args.small_n:
        vs_naive(w, n, args, "similarity_small_vs_naive", digits=3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=37000)
    p.add_argument("--d", type=int, default=512)
    p.add_argument("--dump", help="use a matrix of this embedding dump instead of a synthetic one")
    p.add_argument("--matrix", default="dec_lut")
    p.add_argument(
        "--naive-n",
        type=int,
        help="rows for the naive comparison (it needs ~10 bytes x n^2 of memory); default: all of them where "
        "that fits in 70%% of the available memory, else as many as fit",
    )
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument(
        "--device", default="cpu", help="where ours and the naive peer compute (FAISS is the CPU build, always)"
    )
    p.add_argument("--small-n", type=int, nargs="*", default=[3000, 6000], help="rows of the small-matrix comparisons")
    p.add_argument("--only", choices=["whole", "naive", "small"], help="run one of the comparisons")
    args = p.parse_args()
    w = matrix(args)
    if args.naive_n is None:
        args.naive_n = min(
            w.size(0), int((0.7 * available_bytes(torch.device(args.device)) / NAIVE_BYTES_PER_PAIR) ** 0.5)
        )
    if args.only in (None, "whole"):
        whole_commands(w, args)
    if args.only in (None, "naive"):
        vs_naive(w, args.naive_n, args, "similarity_vs_naive")
    if args.only in (None, "small"):
        small_matrices(w, args)


if __name__ == "__main__":
    main()
