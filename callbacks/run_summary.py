"""Training throughput and the run's ``summary.json``."""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

import tiedtransformer
from tiedtransformer.run.files import RunDir
from tiedtransformer.run.machine import code_commit, machine
from tiedtransformer.run.summary import FitSummary
from tiedtransformer.training.distributed import all_gather_objects

# the summary's final_<key> fields: the keys of TranslationModule.final_scores they come from
FINAL_KEYS = [f.name.removeprefix("final_") for f in dataclasses.fields(FitSummary) if f.name.startswith("final_")]
FINAL_KEYS.remove("val_loss")  # the last validation's loss, which this callback keeps


class RunSummary(L.Callback):
    """Logs ``train/tokens_per_s`` (target tokens per second of training steps) and writes
    ``summary.json`` into the run directory when fit ends, or fails."""

    def __init__(self):
        self._start = self._step_start = 0.0
        self._tokens, self._train_s = 0, 0.0
        self._best_bleu: float | None = None
        self._dropped: Counter = Counter()
        self.filtered: dict[str, int] | None = None  # pairs skipped by the reader in one epoch, by reason
        self._val_loss: float | None = None
        self._history: list[dict] = []  # one entry per validation: epoch, step, BLEU, chrF
        self._commit: str | None = None  # the code's commit when fit started (the checkout can move meanwhile)

    def state_dict(self) -> dict:
        """What a resumed run's summary must still count (it is kept in checkpoints): every validation so far,
        the best BLEU, and the training tokens and seconds."""
        return {
            "history": self._history,
            "best_bleu": self._best_bleu,
            "tokens": self._tokens,
            "train_s": self._train_s,
        }

    def load_state_dict(self, state: dict) -> None:
        self._history = list(state.get("history", []))
        self._best_bleu = state.get("best_bleu")
        self._tokens, self._train_s = int(state.get("tokens", 0)), float(state.get("train_s", 0.0))

    def on_fit_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()
        self._commit = code_commit()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._step_start = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._dropped = Counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        total = Counter()
        for part in all_gather_objects(dict(self._dropped)):
            total.update(part)
        first = self.filtered is None
        self.filtered = {k: total.get(k, 0) for k in ("empty", "too_long", "invalid_utf8")}
        if first and trainer.is_global_zero and sum(total.values()):
            print(
                f"data: skipped {sum(total.values())} training pairs in epoch {trainer.current_epoch} "
                f"({', '.join(f'{k}: {v}' for k, v in self.filtered.items())}); see {RunDir.SUMMARY}",
                flush=True,
            )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._dropped.update(batch.dropped)
        if batch.padding:
            return
        dt, tokens = time.perf_counter() - self._step_start, batch.num_tgt_tokens
        self._tokens += tokens
        self._train_s += dt
        pl_module.log("train/tokens_per_s", tokens / max(dt, 1e-9))

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        m = trainer.callback_metrics
        if "val/bleu" in m:
            bleu = float(m["val/bleu"])
            self._best_bleu = bleu if self._best_bleu is None else max(self._best_bleu, bleu)
        if "val/loss" in m:
            self._val_loss = float(m["val/loss"])
        if "val/bleu" in m:
            self._history.append(
                {
                    "epoch": trainer.current_epoch,
                    "step": trainer.global_step,
                    "wall_s": round(time.perf_counter() - self._start, 1),
                    "bleu": round(float(m["val/bleu"]), 2),
                    "chrf": round(float(m["val/chrf"]), 2),
                }
            )

    @rank_zero_only
    def write(self, trainer, pl_module, status: str) -> Path:
        net, dm, run = pl_module.net, trainer.datamodule, RunDir.of(trainer)
        final = pl_module.final_scores or {}
        summary = FitSummary(
            status=status,
            version=tiedtransformer.__version__,
            commit=self._commit,
            machine=machine(),
            run_dir=str(run.path.resolve()),
            tying=net.cfg.tying,
            direction=getattr(dm, "direction", None),
            seed=int(os.environ["PL_GLOBAL_SEED"]) if os.environ.get("PL_GLOBAL_SEED") else None,
            vocab_size=net.cfg.vocab_size,
            joint_vocab=net.cfg.joint_vocab,
            unique_params=net.num_params(unique=True),
            untied_params=net.num_params(unique=False),
            embedding_params=net.embedding_params(),
            tied_with=net.tied_with(),
            best_val_bleu=self._best_bleu,
            val_bleu_by_validation=self._history,
            val_bleu_sentences=int(trainer.callback_metrics["val/bleu_sentences"])
            if "val/bleu_sentences" in trainer.callback_metrics
            else None,
            val_bleu_search=pl_module.decoding.describe(pl_module.hparams.val_decode),
            **{f"final_{k}": final.get(k) for k in FINAL_KEYS},
            chrf_signature=pl_module.chrf_signature,
            final_val_loss=self._val_loss,
            train_tokens=self._tokens,
            train_tokens_per_s=self._tokens / self._train_s if self._train_s else None,
            wall_s=time.perf_counter() - self._start,
            epochs=trainer.fit_loop.epoch_progress.current.completed,
            global_step=trainer.global_step,
            sacrebleu_signature=pl_module.sacrebleu_signature,
            skipped_steps=pl_module.skipped_steps,
            filtered_pairs_per_epoch=self.filtered,
        )
        return run.write_summary(summary)

    def on_fit_end(self, trainer, pl_module) -> None:
        self.write(trainer, pl_module, "finished")

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.write(trainer, pl_module, f"failed: {type(exception).__name__}")
