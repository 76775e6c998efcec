"""Time to BLEU: this project's Multi30k recipe against Hugging Face ``Seq2SeqTrainer`` training a
``MarianMTModel`` of the same shape, on the same data, SentencePiece vocabulary, CPU and wall budget,
one after the other (ours first: its run trains the vocabulary the peer then uses).

    python -m benchmarks.time_to_bleu                    # 10 minutes each, Multi30k from ../shared/data
    python -m benchmarks.time_to_bleu --minutes 3 --data DIR

Both are scored the same way at every epoch: sacreBLEU on all validation sentences, beam 4, each
with its own search (ours: `tiedtransformer fit -c configs/multi30k.yaml` with its validation set to
beam search over the whole set; the peer: ``predict_with_generate`` with ``generation_num_beams=4``).
Evaluation time counts against each side's budget. The peer's settings are the strongest reasonable
ones we know for training a small Transformer from scratch on one CPU: the same width, depth, heads,
FFN, dropout, label smoothing 0.1, tied embeddings (Marian shares encoder/decoder embeddings and ties
the output layer), Adam β2 0.98, 150 warm-up steps and a linear decay to zero at the end of the wall
budget (as ours: evaluations count against it), its peak learning rate chosen by measurement (each of
``--peer-lrs`` trains the whole budget; the best final val BLEU is reported, all are recorded), bf16
autocast where the CPU runs bf16 natively (the rule ours follows; fp32 elsewhere; ``--peer-precision``
sets it), batches grouped
by length of as many sentences as hold our run's `data.max_tokens` (1,024 tokens: 60-70 sentences),
gradient clipping 1.0. Its shape (width, depth,
heads, FFN, vocabulary) and dropout are read from our run's checkpoint. Marian is post-norm (Transformers offers no
pre-norm Marian); ours is the recipe as configured.

Ends with one JSON line; ``ratio`` is our final val BLEU over the peer's at equal wall time (> 1: ours
is ahead). Needs the ``bench`` extra (transformers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.harness import command, fit_command
from tiedtransformer.run.files import RunDir

REPO = Path(__file__).resolve().parent.parent


def first_reaching(curve: list[tuple[float, float]], target: float) -> float | None:
    """Wall seconds of the first evaluation at or above ``target`` BLEU, or None."""
    return next((t for t, b in curve if b >= target), None)


def run_ours(args, root: Path) -> tuple[list[tuple[float, float]], dict]:
    cmd = fit_command(
        str(REPO / "configs/multi30k.yaml"),
        f"--data.train_path={args.data}/train",
        f"--data.valid_path={args.data}/val",
        f"--data.test_path={args.data}/val",
        f"--trainer.max_time=00:00:{args.minutes:02d}:00",
        "--model.val_decode=beam",
        "--model.val_bleu_sentences=null",
        "--run.wandb=disabled",
        f"--run.root={root}",
        "--run.name=ours",
        "--trainer.enable_progress_bar=false",
    )
    print("ours:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)
    summary = RunDir(root / "ours").read_summary()
    curve = [(v["wall_s"], v["bleu"]) for v in summary.val_bleu_by_validation]
    return curve, summary


def run_peer(
    args, root: Path, spm_model: bytes, size: dict, max_tokens: int, dropout: float
) -> tuple[list[tuple[float, float]], dict]:
    import sentencepiece as spm
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

    from benchmarks.train_step import marian
    from tiedtransformer.analysis.scores import corpus_scores
    from tiedtransformer.specials import BOS_ID, EOS_ID, PAD_ID
    from tiedtransformer.training.precision import default_precision

    if args.peer_precision == "rule":  # the rule ours follows: bf16 only where the CPU runs it natively
        bf16 = default_precision("cpu")[0] == "bf16-mixed"
    else:
        bf16 = args.peer_precision == "bf16"

    sp = spm.SentencePieceProcessor(model_proto=spm_model)
    read = lambda p: Path(p).read_text(encoding="utf-8").splitlines()  # noqa: E731
    src, tgt = read(f"{args.data}/train.en"), read(f"{args.data}/train.de")
    train = []
    for s, t in zip(sp.encode(src), sp.encode(tgt)):
        if 0 < len(s) < 128 and 0 < len(t) < 128:  # ours: data.max_len 128, EOS included
            train.append({"input_ids": s + [EOS_ID], "labels": t + [EOS_ID]})
    # Sentences per batch: our run's data.max_tokens over the mean padded length of a pair (our batches are
    # bounded by sentences x longest side), so that both take about the same tokens per update.
    mean_len = sum(max(len(r["input_ids"]), len(r["labels"])) for r in train) / len(train)
    batch = max(1, round(max_tokens / mean_len))
    val_src, val_ref = read(f"{args.data}/val.en"), read(f"{args.data}/val.de")
    val = [
        {"input_ids": s[:127] + [EOS_ID], "labels": t[:127] + [EOS_ID]}
        for s, t in zip(sp.encode(val_src), sp.encode(val_ref))
    ]
    # The Trainer evaluates in length-grouped order too (train_sampling_strategy="group_by_length" sets
    # its eval sampler): each prediction is put back in file order through its label row.
    where: dict[tuple, list[int]] = {}
    for i, r in enumerate(val):
        where.setdefault(tuple(r["labels"]), []).append(i)

    def collate(rows):  # as DataCollatorForSeq2Seq with a model: the Trainer's label smoother pops the labels
        pad = lambda seqs, v: torch.tensor([x + [v] * (max(map(len, seqs)) - len(x)) for x in seqs])  # noqa: E731
        ids = pad([r["input_ids"] for r in rows], PAD_ID)
        labels = [r["labels"] for r in rows]
        return {
            "input_ids": ids,
            "attention_mask": (ids != PAD_ID).long(),
            "labels": pad(labels, -100),
            "decoder_input_ids": pad([[BOS_ID] + t[:-1] for t in labels], PAD_ID),
        }

    def metrics(pred):
        hyps = [""] * len(val)
        todo = {k: list(v) for k, v in where.items()}
        for row, label in zip(pred.predictions.tolist(), pred.label_ids.tolist()):
            i = todo[tuple(t for t in label if t not in (-100, PAD_ID))].pop(0)  # padded with either
            hyps[i] = sp.decode([t for t in row if t > EOS_ID])
        return {"bleu": corpus_scores(hyps, val_ref)["bleu"]}

    budget = args.minutes * 60

    class WallSchedule(TrainerCallback):
        """The peer's learning rate as ours sets it: linear warm-up over ``warmup`` steps, then a linear decay
        to zero at the end of the wall budget (evaluations included), whatever the speed of the machine."""

        def __init__(self, lr: float, warmup: int = 150):
            self.lr, self.warmup, self.start = lr, warmup, None
            self.applied: list[tuple[int, float]] = []  # (step, rate) every 50 steps: the trainer logs its own

        def on_train_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_step_begin(self, targs, state, control, optimizer=None, **k):
            left = max(0.0, 1.0 - (time.perf_counter() - self.start) / budget)
            rate = self.lr * min(1.0, (state.global_step + 1) / self.warmup) * left
            for g in optimizer.param_groups:
                g["lr"] = rate
            if state.global_step % 50 == 0:
                self.applied.append((state.global_step, round(rate, 7)))

    def make(lr: float, out: str, schedule, callbacks=()):
        model, _ = marian(size, torch.device("cpu"), dropout)
        targs = Seq2SeqTrainingArguments(
            output_dir=out,
            per_device_train_batch_size=batch,
            per_device_eval_batch_size=64,
            learning_rate=lr,
            lr_scheduler_type="constant",  # WallSchedule sets the rate before every step
            max_steps=10**7,  # the wall budget stops it (Budget)
            label_smoothing_factor=0.1,
            adam_beta2=0.98,
            weight_decay=0.0,
            max_grad_norm=1.0,
            optim="adamw_torch_fused",  # one kernel for all parameters, as ours takes it
            bf16=bf16,
            use_cpu=True,
            train_sampling_strategy="group_by_length",
            eval_strategy="epoch",
            save_strategy="no",
            predict_with_generate=True,
            generation_num_beams=4,
            generation_max_length=128,
            logging_steps=50,
            report_to=[],
            dataloader_num_workers=0,
            seed=0,
            disable_tqdm=True,
        )
        trainer = Seq2SeqTrainer(
            model=model,
            args=targs,
            train_dataset=train,
            eval_dataset=val,
            data_collator=collate,
            compute_metrics=metrics,
            callbacks=[schedule, *callbacks],
        )
        # group_by_length reads lengths from "input_ids"; a plain list dataset works
        return trainer

    class Budget(TrainerCallback):
        def __init__(self, lr: float):
            self.lr, self.curve = lr, []

        def on_train_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_step_end(self, targs, state, control, **k):
            if time.perf_counter() - self.start >= budget:
                control.should_training_stop = True

        def on_evaluate(self, targs, state, control, metrics=None, **k):
            self.curve.append((round(time.perf_counter() - self.start, 1), round(metrics["eval_bleu"], 2)))
            print(
                f"peer lr {self.lr:g}: {self.curve[-1][0]:.0f} s, step {state.global_step}, val BLEU "
                f"{self.curve[-1][1]:.2f}",
                flush=True,
            )

    # Its learning rate chosen by measurement, on the same budget and validation set ours was tuned on: each
    # candidate trains the whole budget; the best final val BLEU is the peer's result.
    tried = {}
    for lr in args.peer_lrs:
        cb, schedule = Budget(lr), WallSchedule(lr)
        trainer = make(lr, str(root / f"peer-lr{lr:g}"), schedule, [cb])
        trainer.train()
        if not cb.curve or cb.curve[-1][0] < time.perf_counter() - cb.start - 1:  # stopped mid-epoch: score the end
            trainer.evaluate()
        tried[lr] = {
            "curve": cb.curve,
            "steps": trainer.state.global_step,
            "bleu": cb.curve[-1][1],
            "applied": schedule.applied,
        }
    best = max(tried, key=lambda lr: tried[lr]["bleu"])
    return tried[best]["curve"], {
        "lr": best,
        "lr_search_bleu": {f"{lr:g}": t["bleu"] for lr, t in tried.items()},
        "lr_search_steps": {f"{lr:g}": t["steps"] for lr, t in tried.items()},
        "lr_search_curves_s_bleu": {f"{lr:g}": t["curve"] for lr, t in tried.items()},
        "lr_applied_by_step": tried[best]["applied"],
        "steps": tried[best]["steps"],
        "schedule": "linear warm-up 150 steps, linear decay to 0 at the wall budget (as ours)",
        "bf16": bf16,
        "batch_sentences": batch,
        "dropout": dropout,
    }


def hp_data_max_tokens(root: Path) -> int:
    """Our run's data.max_tokens (its config.yaml)."""
    import yaml

    return int(yaml.safe_load(RunDir(root / "ours").config.read_text())["data"]["max_tokens"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=int, default=10, help="wall budget of each side")
    p.add_argument(
        "--data", default=str(REPO.parent / "shared/data/multi30k"), help="folder with train.{en,de}, val.{en,de}"
    )
    p.add_argument("--target", type=float, default=25.0, help="report the time to first reach this BLEU")
    p.add_argument(
        "--peer-precision",
        choices=("rule", "fp32", "bf16"),
        default="rule",
        help="the peer's precision: our rule (bf16 where the CPU runs it natively), or either one; Marian's CPU "
        "attention runs in bf16 under bf16 autocast, which ours avoids (layers.attention), so fp32 may be its "
        "faster setting",
    )
    p.add_argument(
        "--peer-lrs",
        type=float,
        nargs="+",
        default=[5e-4, 1e-3, 2e-3],
        help="the peer's peak learning rates to try (each trains the whole budget)",
    )
    p.add_argument("--root", help="where the runs go (default: a temporary folder)")
    p.add_argument(
        "--reuse-ours", action="store_true", help="with --root: keep our finished run there, rerun only the peer"
    )
    args = p.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    root = Path(args.root or tempfile.mkdtemp(prefix="time-to-bleu-"))
    ours = RunDir(root / "ours")
    if args.reuse_ours and ours.finished():  # rerun only the peer
        summary = ours.read_summary()
        ours_curve = [(v["wall_s"], v["bleu"]) for v in summary.val_bleu_by_validation]
    else:
        ours_curve, summary = run_ours(args, root)
    from tiedtransformer.run.checkpoint import checkpoint_data, load_checkpoint, network_options

    ckpt = load_checkpoint(ours.last)
    hp = network_options(ckpt["hyper_parameters"])  # the peer gets our run's shape and vocabulary
    size = {k: hp[k] for k in ("d_model", "n_heads", "n_encoder_layers", "n_decoder_layers", "d_ff", "vocab_size")}
    spm_model = checkpoint_data(ckpt)["vocab_models"]["tgt"]
    peer_curve, peer_info = run_peer(args, root, spm_model, size, hp_data_max_tokens(root), hp["dropout"])
    ours_final, peer_final = ours_curve[-1][1], peer_curve[-1][1]
    # The final beam evaluation of the whole set (it scores the averaged weights when the recipe averages).
    ours_end = summary.final_val_bleu
    import transformers

    result = {
        "benchmark": "time_to_bleu",
        "unit": f"val BLEU after {args.minutes} min",
        "ours": ours_end or ours_final,
        "peer": peer_final,
        "ratio": round((ours_end or ours_final) / max(peer_final, 1e-9), 3),
        "peer_name": "transformers Seq2SeqTrainer + MarianMTModel",
        "ours_curve_s_bleu": ours_curve,
        "peer_curve_s_bleu": peer_curve,
        f"ours_s_to_bleu_{args.target:g}": first_reaching(ours_curve, args.target),
        f"peer_s_to_bleu_{args.target:g}": first_reaching(peer_curve, args.target),
        "ours_last_epoch_bleu": ours_final,
        "ours_final_weights": summary.final_weights,
        "ours_steps": summary.global_step,
        "ours_wall_s": summary.wall_s,
        **{f"peer_{k}": v for k, v in peer_info.items()},
        "command": command(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "size": size,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
