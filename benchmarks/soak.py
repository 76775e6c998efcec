"""Soak test: does a long run stay flat? Trains the demo for many epochs with everything that runs
beside training switched on (an embedding snapshot and its similarity report after every epoch, W&B
offline with the report's tables, figures and the dumps as artifacts), and samples the training
process and all its children (DataLoader workers, W&B's service) every few seconds from /proc:
resident memory (PSS summed over the process tree, and the main process's RSS), open file
descriptors and threads.

    python -m benchmarks.soak                       # 30 epochs of a 4,000-pair demo corpus, at both precisions
    python -m benchmarks.soak --epochs 60 --precision bf16-mixed
    python -m benchmarks.soak --show benchmarks/results/20261203-soak.jsonl   # the figures of a results file
    python -m benchmarks.soak --epochs 12 -- --data.num_workers=0             # more options for the fit, after --

An epoch ends, for this script, when the similarity report of that epoch's snapshot is on disk
(``embeddings/step-*/report.md``): that is the last work of an epoch. Per epoch it prints the peak
memory of the process tree, the file descriptors and the threads; it ends with one JSON line holding
``anon_growth``: (peak anonymous and shared-memory PSS of the tree in the last epoch - that of epoch 2) /
that of epoch 2 (lines before 2026-12-07 13:00: anonymous only),
which must stay under 0.05 (``flat``; epochs 0 and 1 are warm-up: allocator pools, imports, W&B's start),
and beside it ``rss_growth``, the same of the whole PSS. The bar is on the anonymous memory (heap,
stacks, tensors) because the PSS of the mapped libraries also moves when other processes that map the
same files start or end (a test run beside the soak moved it by 5%). It soaks the
precision the rule picks for this CPU and then the other one (bf16 autocast and fp32 allocate
differently), one JSON line each. Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import fit_command
from tiedtransformer.run.files import DumpDir, RunDir
from tiedtransformer.training.precision import default_precision

REPO = Path(__file__).resolve().parent.parent


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from the parent pid in /proc/<p>/stat)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent[int(entry)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        found += kids
        frontier += kids
    return found


def _status(pid: int) -> tuple[float, float, int, int, float]:
    """PSS and RSS (MB), threads, open file descriptors and the PSS of the memory the process allocated (MB:
    anonymous pages, the heap, plus shared memory, where DataLoader batches travel; not the mapped libraries
    and files) of one process; zeros once it has exited. Without ``Pss_Anon`` (Linux < 5.10): the whole PSS.
    PSS (proportional set size) counts a page shared by n processes as 1/n in each, so the PSS of a
    process tree adds up to its real memory; RSS would count the pages a forked DataLoader worker
    still shares with its parent twice."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        rollup = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        kb = lambda v: int(v.split()[0]) / 1024  # noqa: E731
        pss = kb(rollup["Pss"])
        allocated = kb(rollup["Pss_Anon"]) + kb(rollup.get("Pss_Shmem", "0 kB")) if "Pss_Anon" in rollup else pss
        return pss, kb(fields["VmRSS"]), int(fields["Threads"]), fds, allocated
    except (OSError, ValueError, KeyError):  # exited, or a zombie (no memory left to report)
        return 0.0, 0.0, 0, 0, 0.0


def kind(pid: int, main: int) -> str:
    """``main``, ``wandb`` (W&B's service) or ``other`` (DataLoader workers, ...), from the command line."""
    if pid == main:
        return "main"
    try:
        program = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return "other"
    return "wandb" if b"wandb" in Path(program.decode(errors="replace")).name.encode() else "other"


def sample(pid: int) -> dict:
    """The process tree of ``pid``: summed PSS (and by kind of process), threads and file descriptors,
    the main process's RSS, and how many processes."""
    procs = [pid, *_children(pid)]
    rows = [_status(p) for p in procs]
    by_kind: dict[str, float] = {"main": 0.0, "wandb": 0.0, "other": 0.0}
    anon_by_kind: dict[str, float] = {"main": 0.0, "wandb": 0.0, "other": 0.0}
    for p, r in zip(procs, rows):
        by_kind[kind(p, pid)] += r[0]
        anon_by_kind[kind(p, pid)] += r[4]
    return {
        "pss_mb": sum(r[0] for r in rows),
        "pss_mb_by_kind": by_kind,
        "anon_pss_mb": sum(r[4] for r in rows),
        "anon_pss_mb_by_kind": anon_by_kind,
        "main_rss_mb": rows[0][1],
        "threads": sum(r[2] for r in rows),
        "fds": sum(r[3] for r in rows),
        "processes": sum(1 for r in rows if r[1] > 0),
    }


def growth(values: list[float], start: int = 2) -> float:
    """(last - values[start]) / values[start]: how much a per-epoch figure grew after the warm-up."""
    return (values[-1] - values[start]) / values[start]


def epochs_done(run_root: Path) -> int:
    """Epoch snapshots whose similarity report is written (the step-0 snapshot not counted)."""
    reports = list(run_root.glob(f"*/{RunDir.EMBEDDINGS}/{RunDir.SNAPSHOT}*/{DumpDir.REPORT}"))
    return sum(1 for r in reports if r.parent.name != "step-00000000")


def precisions(asked: str | None) -> list[str]:
    """The precisions to soak: the one asked for, or the rule's choice for this CPU and then the other."""
    if asked:
        return [asked]
    rule = default_precision("cpu")[0]
    return [rule, "32-true" if rule == "bf16-mixed" else "bf16-mixed"]


def soak(precision: str, args, root: Path) -> dict:
    """Train the demo at ``precision`` under ``root``, sampling memory; the result line."""
    root.mkdir(parents=True, exist_ok=True)
    cmd = fit_command(
        str(REPO / "configs" / "demo.yaml"),
        f"--trainer.max_epochs={args.epochs}",
        f"--data.demo_train_size={args.train_size}",
        "--data.demo_valid_size=300",
        "--model.val_bleu_sentences=300",
        f"--run.root={root}",
        "--run.wandb=offline",
        "--snapshot.every_n_epochs=1",
        "--snapshot.log_artifact=true",
        "--trainer.enable_progress_bar=false",
        f"--trainer.precision={precision}",
        *args.fit_options,
    )
    env = {**os.environ, "WANDB_SILENT": "true"}
    code = commit()  # of the code that runs, before anything else can change the working tree
    log = open(root / "soak.log", "w")
    print("$ " + " ".join(cmd[2:]), flush=True)
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    per_epoch: list[list[dict]] = [[]]
    while proc.poll() is None:
        s = sample(proc.pid)
        done = epochs_done(root)
        while len(per_epoch) <= done:  # the samples of an epoch end when its report is written
            if len(per_epoch) > 1 or per_epoch[0]:
                e, samples = len(per_epoch) - 1, per_epoch[-1]
                if samples:
                    print(
                        f"epoch {e:3d}: peak PSS {max(x['pss_mb'] for x in samples):7.1f} MB "
                        f"(main process RSS {max(x['main_rss_mb'] for x in samples):7.1f})  "
                        f"fds {samples[-1]['fds']:4d}  threads {samples[-1]['threads']:4d}  "
                        f"processes {samples[-1]['processes']}  [{time.time() - start:5.0f} s]",
                        flush=True,
                    )
            per_epoch.append([])
        if s["main_rss_mb"] > 0:
            per_epoch[min(done, len(per_epoch) - 1)].append(s)
        time.sleep(args.interval)
    log.close()
    if proc.returncode != 0:
        sys.exit(f"training failed (exit {proc.returncode}); see {root / 'soak.log'}")
    epochs = [e for e in per_epoch[: args.epochs] if e]
    if len(epochs) < 4:
        sys.exit(f"only {len(epochs)} epochs were sampled; use a longer run or a shorter --interval")
    peak = [max(x["pss_mb"] for x in e) for e in epochs]
    main_rss = [max(x["main_rss_mb"] for x in e) for e in epochs]
    fds = [e[-1]["fds"] for e in epochs]
    threads = [e[-1]["threads"] for e in epochs]
    by_kind = {
        k: [round(max(x["pss_mb_by_kind"][k] for x in e), 1) for e in epochs] for k in ("main", "wandb", "other")
    }
    anon_by_kind = {
        k: [round(max(x["anon_pss_mb_by_kind"][k] for x in e), 1) for e in epochs] for k in ("main", "wandb", "other")
    }
    anon = [max(x["anon_pss_mb"] for x in e) for e in epochs]
    return {
        "benchmark": "soak",
        "precision": precision,
        "epochs": len(epochs),
        "train_pairs_per_epoch": args.train_size,
        "interval_s": args.interval,
        "wall_s": round(time.time() - start, 1),
        "peak_pss_mb_per_epoch": [round(x, 1) for x in peak],
        "peak_main_rss_mb_per_epoch": [round(x, 1) for x in main_rss],
        "peak_pss_mb_per_epoch_by_kind": by_kind,
        "peak_anon_pss_mb_per_epoch": [round(x, 1) for x in anon],
        "peak_anon_pss_mb_per_epoch_by_kind": anon_by_kind,
        "processes_per_epoch": [max(x["processes"] for x in e) for e in epochs],
        "fds_per_epoch": fds,
        "threads_per_epoch": threads,
        "rss_growth": round(growth(peak), 4),  # of the tree's PSS: its real resident memory
        "main_rss_growth": round(growth(main_rss), 4),
        "anon_growth": round(growth(anon), 4),
        "fds_growth": fds[-1] - fds[2],
        "threads_growth": threads[-1] - threads[2],
        # judged on the memory the tree allocated (anonymous and shared memory: heap, stacks, tensors, batches in
        # transit): the PSS of the shared libraries also moves when *other* processes that map them start or end
        "flat": growth(anon) < 0.05,
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "cpu_bf16": default_precision("cpu")[0] == "bf16-mixed",
        "fit_options": args.fit_options,
        "commit": code,
    }


def commit() -> str:
    """The repository's commit, with ``+changes`` when the working tree differs from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=REPO).returncode
    return head.stdout.strip() + ("+changes" if dirty else "")


def show(path: str) -> None:
    """One line per soak of a results file: what the README quotes."""
    for line in Path(path).read_text().splitlines():
        d = json.loads(line)
        peak, main = d["peak_pss_mb_per_epoch"], d["peak_main_rss_mb_per_epoch"]
        print(
            f"{d.get('precision', '?'):>10}  commit {d.get('commit', '?'):<16} {d['epochs']:3d} epochs  "
            f"peak PSS epoch 2 {peak[2]:7.1f} MB -> last {peak[-1]:7.1f} MB (max {max(peak[2:]):7.1f}): "
            f"rss_growth {d['rss_growth']:+.4f}, main process {main[2]:.1f} -> {main[-1]:.1f} MB "
            f"({d['main_rss_growth']:+.4f}), anonymous {_anon(d)}, flat {_flat(d)}, {d['wall_s']:.0f} s"
        )


def _anon(d: dict) -> str:
    """The tree's anonymous PSS, epoch 2 -> last, and its growth (results files from before it was recorded: -)."""
    anon = d.get("peak_anon_pss_mb_per_epoch")
    return f"{anon[2]:.1f} -> {anon[-1]:.1f} MB ({d['anon_growth']:+.4f})" if anon else "-"


def _flat(d: dict) -> str:
    """Flat by today's rule (anonymous growth < 0.05) where the line has it; else the line's own verdict, marked."""
    return str(d["anon_growth"] < 0.05) if "anon_growth" in d else f"{d['flat']} (by the whole PSS)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--train_size", type=int, default=4000, help="pairs of the generated demo corpus per epoch")
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between samples")
    ap.add_argument(
        "--precision",
        default=None,
        help="one trainer.precision (default: the rule's choice for this CPU, then the other)",
    )
    ap.add_argument("--out", default=None, help="folder for the runs (default: a temporary one, removed)")
    ap.add_argument("--show", metavar="JSONL", help="print the soaks of a results file and exit")
    ap.add_argument("fit_options", nargs="*", help="after --: more options for the fit (e.g. -- --data.num_workers=0)")
    args = ap.parse_args()
    if args.show:
        return show(args.show)
    if args.epochs < 4:
        ap.error("--epochs must be at least 4 (epochs 0 and 1 are warm-up)")
    root = Path(args.out or tempfile.mkdtemp(prefix="soak-"))
    for precision in precisions(args.precision):
        print(json.dumps(soak(precision, args, root / precision)), flush=True)
    if not args.out:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
