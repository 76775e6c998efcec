"""The Multi30k recipe's BLEU after each epoch and at the end, over several runs.

    python -m benchmarks.recipe --runs 2                      # trains `fit -c configs/multi30k.yaml` twice (~15 min each)
    python -m benchmarks.recipe --summarize runs/A runs/B     # the same table for runs already made
    python -m benchmarks.recipe --runs 1 -- --model.optim.lr=1e-3   # options after -- go to every fit

Per epoch: greedy BLEU on the recipe's fixed 500-sentence sample of `val` (what training logs); at
the end: beam 4 on all of `val` (the final evaluation). Wall seconds are the whole command's (set-up,
training, validation, final evaluation). Ends with one JSON line (median and spread of the final BLEU).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

from benchmarks.harness import fit_command
from tiedtransformer.run.files import RunDir

REPO = Path(__file__).resolve().parent.parent


def first_time_to(curve: list[dict], bleu: float) -> float | None:
    """Wall seconds of the first validation at or above ``bleu``; None if none got there."""
    return next((v["wall_s"] for v in curve if v["bleu"] >= bleu), None)


def row(run_dir: Path, wall: float | None = None) -> dict:
    s = RunDir(run_dir).read_summary()
    curve = s.val_bleu_by_validation
    return {
        "run": run_dir.name,
        "per_epoch_bleu": [v["bleu"] for v in curve],
        "per_epoch_wall_s": [round(v["wall_s"]) for v in curve],
        "first_s_to_greedy_bleu": {b: first_time_to(curve, b) for b in (25, 30, 35)},
        "per_epoch_chrf": [v["chrf"] for v in curve],
        "sample": s.val_bleu_sentences,
        "final_bleu": round(s.final_val_bleu, 2),
        "final_chrf": round(s.final_val_chrf, 2),
        "final_sentences": s.final_val_sentences,
        "final_search": s.final_search,
        "steps": s.global_step,
        "epochs_started": len(s.val_bleu_by_validation),
        "fit_s": round(s.wall_s),
        "command_s": wall,
        "tokens_per_s": round(s.train_tokens_per_s or 0),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=2, help="how many fits to run")
    p.add_argument("--config", default=str(REPO / "configs/multi30k.yaml"))
    p.add_argument("--root", default=str(REPO / "runs"), help="where the runs go")
    p.add_argument("--summarize", nargs="*", help="run directories already made: only print their table")
    p.add_argument("extra", nargs="*", help="after --: options for every fit")
    a = p.parse_args()
    rows = []
    if a.summarize:
        rows = [row(Path(r)) for r in a.summarize]
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for i in range(a.runs):
            name = f"recipe-{stamp}-{i + 1}"
            cmd = fit_command(
                a.config,
                f"--run.root={a.root}",
                f"--run.name={name}",
                "--trainer.enable_progress_bar=false",
                *a.extra,
            )
            print(" ".join(cmd), flush=True)
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, cwd=REPO)
            rows.append(row(Path(a.root) / name, round(time.perf_counter() - t0)))
    for r in rows:
        print(
            f"{r['run']}: greedy BLEU on {r['sample']} val sentences after each epoch "
            f"{' / '.join(f'{b:.1f}' for b in r['per_epoch_bleu'])}; final (all {r['final_sentences']}, "
            f"{r['final_search']}) BLEU {r['final_bleu']:.2f} chrF {r['final_chrf']:.2f}; {r['steps']} steps, "
            f"{r['tokens_per_s']} target tok/s, fit {r['fit_s']} s; first greedy BLEU >= 25/30/35 at "
            + " / ".join("never" if t is None else f"{t:.0f} s" for t in r["first_s_to_greedy_bleu"].values())
            + (f", command {r['command_s']} s" if r["command_s"] else "")
        )
    finals = [r["final_bleu"] for r in rows]
    print(
        json.dumps(
            {
                "benchmark": "recipe",
                "config": Path(a.config).name,
                "options": a.extra,  # given to every fit (none for runs only summarized here)
                "unit": "final val BLEU",
                "median": statistics.median(finals),
                "min": min(finals),
                "max": max(finals),
                "runs": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
