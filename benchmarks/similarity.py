"""Speed of the whole similarity analysis of one token matrix (top-K pairs, bottom-K pairs, k-NN,
histogram) against its peer, an exact FAISS ``IndexFlatIP`` k-NN search of the matrix against itself,
measured in the same process on the same matrix; and against the naive approach (full similarity
matrix, then sort) on a row subset small enough for it to fit in memory.

    python -m benchmarks.similarity                      # 37000 x 512, as in the seed experiment
    python -m benchmarks.similarity --dump runs/X/embeddings/step-N --matrix dec_lut

Prints the figures and ends with one JSON line {"ours", "peer", "unit", "ratio", ...}.
Needs the ``bench`` extra (faiss-cpu).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time

import torch

from tiedtransformer.analysis.similarity import analyze_matrix, normalize_rows


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def matrix(args) -> torch.Tensor:
    if args.dump:
        from tiedtransformer.analysis.dumps import read_dump

        return read_dump(args.dump).matrices[args.matrix].float()
    g = torch.Generator().manual_seed(0)
    # embedding-like: a few shared directions plus noise, so that there are real near neighbours
    basis = torch.randn(64, args.d, generator=g)
    return torch.randn(args.n, 64, generator=g) @ basis * 0.3 + torch.randn(args.n, args.d, generator=g)


def ours(w, args) -> float:
    t = time.perf_counter()
    analyze_matrix(w, top_k=args.top_k, knn_k=args.knn_k, bins=200, block=args.block)
    return time.perf_counter() - t


def faiss_knn(w, k) -> float:
    import faiss

    t = time.perf_counter()
    x = normalize_rows(w).numpy()
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    index.search(x, k + 1)  # +1: each row finds itself first
    return time.perf_counter() - t


def naive(w, args) -> float:
    """Full V×V similarity matrix, then sort: pairs by sorting the upper triangle, k-NN by sorting rows."""
    t = time.perf_counter()
    x = normalize_rows(w)
    sim = x @ x.T
    iu = torch.triu_indices(len(x), len(x), offset=1)
    values = sim[iu[0], iu[1]]
    order = values.argsort(descending=True)
    _top, _bottom = order[: args.top_k], order[-args.top_k :]
    torch.histc(values.clamp(-1, 1), bins=200, min=-1, max=1)
    sim.fill_diagonal_(float("-inf"))
    sim.argsort(dim=1, descending=True)[:, : args.knn_k]
    return time.perf_counter() - t


def best_of(fn, repeats):
    return min(fn() for _ in range(repeats))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=37000)
    p.add_argument("--d", type=int, default=512)
    p.add_argument("--dump", help="use a matrix of this embedding dump instead of a synthetic one")
    p.add_argument("--matrix", default="dec_lut")
    p.add_argument("--top-k", type=int, default=1000)
    p.add_argument("--knn-k", type=int, default=10)
    p.add_argument("--block", type=int, default=4096)
    p.add_argument(
        "--naive-n", type=int, default=20000, help="rows for the naive comparison (it needs ~20 bytes × n² of memory)"
    )
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    w = matrix(args)
    print(
        f"matrix {tuple(w.shape)}, torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )

    t_ours = best_of(lambda: ours(w, args), args.repeats)
    rss_ours = peak_rss_gb()
    print(
        f"ours, whole analysis (top/bottom-{args.top_k} pairs, {args.knn_k}-NN, histogram): {t_ours:.2f} s, peak RSS {rss_ours:.2f} GB"
    )
    t_faiss = best_of(lambda: faiss_knn(w, args.knn_k), args.repeats)
    print(f"peer, FAISS IndexFlatIP exact {args.knn_k}-NN of the matrix against itself: {t_faiss:.2f} s")
    print(f"ratio ours / FAISS: {t_ours / t_faiss:.2f} (target <= 1.5)")

    sub = w[: args.naive_n]
    t_ours_sub = best_of(lambda: ours(sub, args), args.repeats)
    t_naive_sub = best_of(lambda: naive(sub, args), 1)
    print(
        f"on {args.naive_n} rows: ours {t_ours_sub:.2f} s, naive (full matrix + sort) {t_naive_sub:.2f} s, "
        f"speed-up {t_naive_sub / t_ours_sub:.1f}x (target >= 10)"
    )
    print(
        json.dumps(
            {
                "benchmark": "similarity",
                "ours": round(t_ours, 3),
                "peer": round(t_faiss, 3),
                "unit": "s",
                "ratio": round(t_ours / t_faiss, 3),
                "peer_name": "faiss.IndexFlatIP knn",
                "shape": list(w.shape),
                "peak_rss_gb_ours": round(rss_ours, 2),
                "naive_rows": args.naive_n,
                "naive_s": round(t_naive_sub, 3),
                "ours_naive_rows_s": round(t_ours_sub, 3),
                "naive_speedup": round(t_naive_sub / t_ours_sub, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
