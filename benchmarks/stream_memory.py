"""Load check of the streaming input pipeline: one epoch over N generated pairs in the Hugging Face
hub's schema (parquet shards, read through the same `datasets` streaming code as WMT), split over
2 ranks × 2 DataLoader workers. Reports peak resident memory (main process + workers) and checks that
every pair is delivered exactly once. Run it for two corpus sizes to see that memory does not grow
with the corpus:

    python -m benchmarks.stream_memory --pairs 100000
    python -m benchmarks.stream_memory --pairs 1000000

No model is trained (this measures the data path); ranks run one after the other in this process,
each with its own DataLoader workers, exactly as each DDP rank would. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import tempfile
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from torch.utils.data import DataLoader

from tiedtransformer.data.datamodule import TranslationData
from tiedtransformer.data.demo_corpus import demo_pairs


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident memory (RSS) and private memory (USS: pages no other process maps, so not the ones a
    forked worker still shares with its parent) of one process, in MB; (0, 0) once it has exited."""
    rss = uss = 0.0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, value = line.split()[:2]
                if key == "Rss:":
                    rss = int(value) / 1024
                elif key in ("Private_Clean:", "Private_Dirty:"):
                    uss += int(value) / 1024
    except (OSError, ValueError):
        pass
    return rss, uss


def descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (the DataLoader workers, also when a fork server starts them)."""
    todo, seen = [pid], []
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            seen += kids
            todo += kids
    return seen


class Fingerprint:
    """An order-independent fingerprint of a multiset of strings in O(1) memory: count, and sums of
    a 64-bit hash and of its square (mod 2^64). A missing or repeated pair changes it."""

    def __init__(self):
        self.n = self.s1 = self.s2 = 0

    def add(self, text: str) -> None:
        h = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        self.n += 1
        self.s1 = (self.s1 + h) % 2**64
        self.s2 = (self.s2 + h * h) % 2**64

    def __eq__(self, other) -> bool:
        return (self.n, self.s1, self.s2) == (other.n, other.s1, other.s2)


ROW_GROUP = 10_000  # rows per parquet row group (the hub's WMT shards use row groups of this order)


def write_shards(folder: Path, n: int, shards: int) -> Fingerprint:
    """The corpus, and the fingerprint of its target sentences for the completeness check."""
    folder.mkdir(parents=True, exist_ok=True)
    expected, rows, k = Fingerprint(), [], 0
    per = -(-n // shards)
    for pair in demo_pairs("train", n):
        rows.append({"translation": {"de": pair["de"], "en": pair["en"]}})
        expected.add(pair["de"])
        if len(rows) == per:
            pq.write_table(
                pa.Table.from_pylist(rows), folder / f"train-{k:05d}-of-{shards:05d}.parquet", row_group_size=ROW_GROUP
            )
            rows, k = [], k + 1
    if rows:
        pq.write_table(
            pa.Table.from_pylist(rows), folder / f"train-{k:05d}-of-{shards:05d}.parquet", row_group_size=ROW_GROUP
        )
    return expected


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=1_000_000)
    p.add_argument(
        "--shard-rows",
        type=int,
        default=50_000,
        help="pairs per parquet shard; a larger corpus has more shards, as on the hub, whose files "
        "have a bounded size (Arrow holds one shard's compressed columns while it reads it)",
    )
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--start", default=None, choices=["fork", "forkserver", "spawn"], help="how workers start")
    p.add_argument("--shuffle-buffer", type=int, default=50_000, help="data.shuffle_buffer (pairs per worker)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        # Written by a separate process: building N rows here would leave this process's heap (and so
        # the forked workers' resident pages) larger for larger N, and the figure would measure that.
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            shards = -(-args.pairs // args.shard_rows)
            expected = pool.apply(write_shards, (Path(tmp) / "hub", args.pairs, shards))
        print(
            f"wrote {args.pairs} pairs in {shards} parquet shards in {time.perf_counter() - t0:.0f} s (separate process)"
        )
        os.environ["TIEDTRANSFORMER_CACHE"] = str(Path(tmp) / "cache")
        dm = TranslationData(
            source="hub",
            hub_dataset=str(Path(tmp) / "hub"),
            hub_config=None,
            vocab_size=2000,
            vocab_sample_size=20000,
            vocab_max_scan=50000,
            max_tokens=4096,
            max_len=128,
            shuffle_buffer=args.shuffle_buffer,
        )
        dm.setup(None)
        seen, batches, padded, real = Fingerprint(), 0, 0, 0
        stop = threading.Event()
        worker_peak: dict[int, tuple[float, float]] = {}  # pid -> (peak RSS, peak USS)
        samples: list[tuple[int, float, float]] = []  # (pairs delivered, main RSS, workers' RSS summed)

        others = set(descendants(os.getpid()))  # e.g. multiprocessing's resource tracker: not workers

        def sample():
            while not stop.is_set():
                main_rss, total = memory_mb(os.getpid())[0], 0.0
                for pid in set(descendants(os.getpid())) - others:
                    rss, uss = memory_mb(pid)
                    old = worker_peak.get(pid, (0.0, 0.0))
                    worker_peak[pid] = (max(old[0], rss), max(old[1], uss))
                    total += rss
                samples.append((seen.n, main_rss, total))
                time.sleep(0.2)

        threading.Thread(target=sample, daemon=True).start()
        t0 = time.perf_counter()
        for rank in range(args.ranks):
            stream = dm.batch_stream("train", 0, rank, args.ranks)
            for batch in DataLoader(
                stream, batch_size=None, num_workers=args.workers, multiprocessing_context=args.start
            ):
                batches += 1
                padded += batch.src.numel() + batch.tgt_out.numel()
                real += int((batch.src != 0).sum()) + int((batch.tgt_out != 0).sum())
                for ref in batch.refs:
                    seen.add(ref)
        took = time.perf_counter() - t0
        stop.set()
        main_peak = max(m for _, m, _ in samples)
        total_peak = max(m + w for _, m, w in samples)
        rss_peak = max(r for r, _ in worker_peak.values())
        uss_peak = max(u for _, u in worker_peak.values())
        # the workers' summed RSS over the epoch, in tenths of the pairs delivered: flat if it does not rise
        tenths = [
            max((w for n, _, w in samples if k * seen.n / 10 <= n <= (k + 1) * seen.n / 10), default=None)
            for k in range(10)
        ]
        complete = seen == expected
        print(
            f"{args.ranks} ranks x {args.workers} workers: {seen.n} pairs in {batches} batches, "
            f"{took:.0f} s ({seen.n / took:,.0f} pairs/s); every pair exactly once: {complete}"
        )
        print(
            f"peak memory: main process RSS {main_peak:.0f} MB; each worker at most RSS {rss_peak:.0f} MB, of it private "
            f"(USS) {uss_peak:.0f} MB ({len(worker_peak)} worker processes); main + live workers {total_peak:.0f} MB"
        )
        print(
            "live workers' RSS summed, peak per tenth of the epoch (MB): "
            + " ".join("-" if t is None else f"{t:.0f}" for t in tenths)
        )
        print(f"padding: {100 * (1 - real / padded):.1f}% of batch slots")
        print(
            json.dumps(
                {
                    "benchmark": "stream_memory",
                    "pairs": args.pairs,
                    "shard_rows": args.shard_rows,
                    "peak_rss_mb": round(total_peak),
                    "peak_rss_main_mb": round(main_peak),
                    "peak_rss_worker_mb": round(rss_peak),
                    "peak_uss_worker_mb": round(uss_peak),
                    "workers_rss_by_tenth_mb": [t and round(t) for t in tenths],
                    "complete_once": complete,
                    "pairs_per_s": round(seen.n / took),
                    "padding_pct": round(100 * (1 - real / padded), 2),
                }
            )
        )


if __name__ == "__main__":
    main()
