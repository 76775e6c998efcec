"""The demo as a user runs it (the README's command 1 after the install: ``tiedtransformer fit -c
configs/demo.yaml``), and the precision its config pins.

1. ``demo_fit``: the whole demo command, timed from outside (start-up, the vocabulary, 3 epochs with
   their validation BLEU, the final beam search), ``--runs`` times one after the other, each with an
   empty cache as on a fresh machine (the vocabulary is trained each time): wall seconds,
   training target tokens/s and the final BLEU. A figure, not a comparison: there is no peer for our
   own demo. The install is not timed (pip's time depends on its cache).
2. ``demo_precision``: the config's precision (fp32, ``trainer.precision: 32-true``) against
   bf16-mixed: one epoch of the demo each, whole commands, interleaved rounds (``benchmarks.harness``).
   ``ratio`` > 1: the config's choice is the faster one.

    python -m benchmarks.demo                    # both
    python -m benchmarks.demo --only precision
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.harness import compare, emit, fit_command, interleaved
from tiedtransformer.run.files import RunDir
from tiedtransformer.run.summary import FitSummary

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "demo.yaml"


def demo_fit(root: Path, name: str, *options: str, cache: Path | None = None) -> FitSummary:
    """Runs the demo command (plus ``options``) into ``root/name``, with ``cache`` as the project's cache
    (default: the user's); its summary.json."""
    cmd = fit_command(CONFIG, f"--run.root={root}", f"--run.name={name}", *options)
    env = {**os.environ, "TIEDTRANSFORMER_CACHE": str(cache)} if cache else None
    subprocess.run(cmd, check=True, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return RunDir(root / name).read_summary()


def whole_demo(root: Path, runs: int) -> None:
    seconds, summaries = [], []
    for i in range(runs):
        t = time.perf_counter()
        summaries.append(demo_fit(root, f"demo-{i}", cache=root / f"cache-{i}"))  # as on a fresh machine
        seconds.append(round(time.perf_counter() - t, 1))
        s = summaries[-1]
        print(
            f"demo run {i + 1}: {seconds[-1]:.0f} s, {s.train_tokens_per_s:.0f} target tok/s, "
            f"final BLEU {s.final_val_bleu:.1f}",
            flush=True,
        )
    emit(
        "demo_fit",
        {
            "seconds": seconds,
            "median_s": statistics.median(seconds),
            "target_tok_per_s": [round(s.train_tokens_per_s) for s in summaries],
            "final_val_bleu": [round(s.final_val_bleu, 2) for s in summaries],
            "epochs": summaries[0].epochs,
        },
        what="tiedtransformer fit -c configs/demo.yaml, the whole command, one run after the other",
    )


def precision(root: Path, rounds: int) -> None:
    summaries: dict[str, list[FitSummary]] = {"fp32": [], "bf16-mixed": []}
    precisions = {"fp32": "32-true", "bf16-mixed": "bf16-mixed"}

    def contestant(name: str):
        def run():
            n = len(summaries[name])
            summaries[name].append(
                demo_fit(root, f"{name}-{n}", "--trainer.max_epochs=1", f"--trainer.precision={precisions[name]}")
            )

        return run

    seconds = interleaved({name: contestant(name) for name in summaries}, rounds=rounds, warmup=1)
    result = compare(seconds["fp32"], seconds["bf16-mixed"])
    tps = {name: round(statistics.median(s.train_tokens_per_s for s in runs[1:])) for name, runs in summaries.items()}
    print(
        f"one demo epoch, whole command: fp32 {result['ours']['median']:.1f} s ({tps['fp32']:,} target tok/s), "
        f"bf16-mixed {result['peer']['median']:.1f} s ({tps['bf16-mixed']:,}); ratio {result['ratio']:.2f}",
        flush=True,
    )
    emit(
        "demo_precision",
        {**result, "unit": "s", "target_tok_per_s": tps},
        ours_name="fp32 (the demo config's precision)",
        peer_name="bf16-mixed",
        what="tiedtransformer fit -c configs/demo.yaml --trainer.max_epochs=1, the whole command",
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="whole demo commands, one after the other")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the precision comparison")
    p.add_argument("--only", choices=["demo", "precision"])
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="demo-bench-") as tmp:
        if args.only != "precision":
            whole_demo(Path(tmp), args.runs)
        if args.only != "demo":
            precision(Path(tmp), args.rounds)


if __name__ == "__main__":
    main()
