"""Embedding snapshots and their similarity reports during training (rank zero, thin)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from tiedtransformer.analysis.dumps import dump_from_model, read_dump, write_dump
from tiedtransformer.analysis.matrices import snapshot_overlap
from tiedtransformer.analysis.options import AnalysisOptions
from tiedtransformer.analysis.report import analyze_to_dir, projector_table, scalars, tables
from tiedtransformer.analysis.schema import DumpAnalysis
from tiedtransformer.analysis.settled import SETTLED
from tiedtransformer.analysis.trajectory import geometry_scalars, nulls, snapshot_statistics
from tiedtransformer.run.files import RunDir
from tiedtransformer.training.distributed import full_copy, is_sharded


def _wandb_loggers(trainer) -> list:
    """The W&B loggers of the run that still work (the CLI wraps them in a ResilientLogger)."""
    from lightning.pytorch.loggers import WandbLogger

    found = []
    for lg in trainer.loggers:
        if getattr(lg, "failed", None) is not None:
            continue
        inner = getattr(lg, "inner", lg)
        if isinstance(inner, WandbLogger):
            found.append(inner)
    return found


class EmbeddingSnapshot(L.Callback):
    """Writes the four token matrices (with ``vocab.txt``) every N epochs and/or M steps and at the end
    of fit, to ``<run dir>/embeddings/step-XXXXXXXX/``, atomically.

    Args:
        every_n_epochs: Snapshot after every N-th training epoch (0: never).
        every_n_steps: Snapshot every M optimizer steps (0: never).
        at_start: Also snapshot the matrices at initialisation (step 0), the null that the similarity
            report sets every later snapshot against.
        dtype: Storage precision of the matrices.
        log_artifact: Also log each dump as a W&B artifact.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        every_n_steps: int = 0,
        at_start: bool = True,
        dtype: Literal["float32", "float16"] = "float32",
        log_artifact: bool = False,
    ):
        self.every_n_epochs, self.every_n_steps, self.at_start = every_n_epochs, every_n_steps, at_start
        self.dtype, self.log_artifact = dtype, log_artifact
        self.dumps: list[Path] = []
        self._last_step = -1

    def on_train_start(self, trainer, pl_module) -> None:
        if self.at_start and trainer.global_step == 0:
            self.snapshot(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self.snapshot(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.snapshot(trainer, pl_module)

    def on_fit_end(self, trainer, pl_module) -> None:
        self.snapshot(trainer, pl_module)

    def snapshot(self, trainer, pl_module) -> Path | None:
        if trainer.sanity_checking or trainer.global_step == self._last_step:
            return None
        self._last_step = trainer.global_step
        net = pl_module.net
        if is_sharded(net):  # FSDP: every rank gathers the full weights (collective), rank zero writes
            net = full_copy(net)
        return self._write(trainer, net) if trainer.is_global_zero else None

    def _write(self, trainer, net) -> Path:
        dm = trainer.datamodule
        meta = {
            "tying": net.cfg.tying,
            "direction": dm.direction,
            "step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "seed": _run_seed(),
        }
        dump = dump_from_model(net, dm.vocabulary_state(), meta)
        path = RunDir.of(trainer).snapshot(trainer.global_step)
        write_dump(path, dump, dtype=getattr(torch, self.dtype))
        self.dumps.append(path)
        if self.log_artifact:
            import wandb

            for lg in _wandb_loggers(trainer):
                art = wandb.Artifact(f"embeddings-{lg.experiment.id}", type="embeddings", metadata=meta)
                art.add_dir(str(path))
                lg.experiment.log_artifact(art, aliases=[f"step-{trainer.global_step}"])
        return path


class SimilarityReport(L.Callback):
    """After each snapshot of the :class:`EmbeddingSnapshot` it follows: runs the similarity analysis
    into the dump's folder (``similarity.json``, ``report.md``, figures) and logs it: scalars
    ``emb/<name>/mean_top<K>`` ..., each matrix's geometry against its nulls (``emb/<name>/effective_rank``
    beside ``..._init`` and ``..._random`` ...; CKA and Procrustes between the matrices beside their chance
    levels), W&B tables of the top pairs and the Jaccard table, the most frequent tokens' rows for W&B's
    embedding projector, the figures, and how settled each matrix is since the last snapshot.

    Args:
        analysis: What the analysis computes (as ``tiedtransformer analyze``).
        max_table_rows: Rows of a W&B table at most (the best pairs are kept).
        projector_rows: Rows per matrix in the embedding-projector table (``emb/projector``); 0: none.
    """

    def __init__(
        self, analysis: AnalysisOptions = AnalysisOptions(), max_table_rows: int = 10000, projector_rows: int = 500
    ):
        self.analysis, self.max_table_rows, self.projector_rows = analysis, max_table_rows, projector_rows
        self._nulls: dict | None = None  # the geometry of the step-0 matrices and of random ones
        self.snapshots: EmbeddingSnapshot | None = None
        self._done: set[Path] = set()
        self._previous = None
        self._init = None  # the step-0 dump: the null of every later analysis

    def follow(self, snapshots: EmbeddingSnapshot) -> SimilarityReport:
        """Report on the dumps this callback writes (the CLI connects the two)."""
        self.snapshots = snapshots
        return self

    def _pending(self) -> list[Path]:
        return [p for p in (self.snapshots.dumps if self.snapshots else []) if p not in self._done]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.report(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.report(trainer, pl_module)

    def on_fit_end(self, trainer, pl_module) -> None:
        self.report(trainer, pl_module)

    @rank_zero_only
    def report(self, trainer, pl_module) -> None:
        for path in self._pending():
            self._done.add(path)
            dump = read_dump(path)
            if self._init is None and (first := RunDir.of(trainer).snapshot(0)).is_dir():  # also after a resume
                self._init = dump if first == path else read_dump(first)
            init = self._init if self._init is not dump else None
            report, results = analyze_to_dir(dump, path, self._options(pl_module), init=init)
            metrics = scalars(report)
            if self._previous is not None:
                for name, o in snapshot_overlap(self._previous, results).items():
                    metrics[f"emb/{name}/{SETTLED}{self.analysis.top_k}"] = o["top_pairs"]
                    metrics[f"emb/{name}/settled_knn"] = o["knn"]
            self._previous = results
            if self._init is not None:  # the geometry against the step-0 matrices and random ones
                a = self.analysis
                self._nulls = self._nulls or nulls(self._init, a.min_count, a.null_seed)
                geometry = snapshot_statistics(dump, self._init, a.min_count, a.null_seed)
                metrics |= geometry_scalars(geometry, self._nulls)
            step = int(dump.meta.get("step") or trainer.global_step)
            for lg in trainer.loggers:
                lg.log_metrics(metrics, step=step)
            self._log_wandb(trainer, report, path, step, dump)

    def _options(self, pl_module) -> AnalysisOptions:
        """Unset, the device is the model's if it is a GPU (the analysis runs beside training), else the CPU."""
        if self.analysis.device is not None:
            return self.analysis
        return dataclasses.replace(self.analysis, device="cuda" if pl_module.device.type == "cuda" else "cpu")

    def _log_wandb(self, trainer, report: DumpAnalysis, path: Path, step: int, dump) -> None:
        loggers = _wandb_loggers(trainer)
        if not loggers:
            return
        import wandb

        made = tables(report, self.max_table_rows)
        if self.projector_rows:
            made["emb/projector"] = projector_table(dump, self.projector_rows)
        logged = {key: wandb.Table(columns=cols, data=rows) for key, (cols, rows) in made.items()}
        figures = {f"emb/figures/{k}": wandb.Image(str(path / v)) for k, v in (report.figures or {}).items()}
        payload = {**logged, **figures}
        for lg in loggers:
            try:
                lg.experiment.log({**payload, "trainer/global_step": step})
            except Exception as e:  # W&B trouble must not stop training; the report is on disk
                print(
                    f"W&B: could not log the similarity report ({type(e).__name__}: {e}); it is in {path}", flush=True
                )
        release_rows(logged.values())


def release_rows(logged_tables) -> None:
    """Empties W&B tables that have been logged. Logging a table writes its rows to a file of a run
    artifact at once, but W&B keeps its last 100 artifact objects alive (``artifact_instance_cache``),
    each holding its tables: without this, every report's rows (and the report they point into) stay
    in memory for the next 100 tables of the run (``benchmarks/soak.py`` measured it)."""
    for table in logged_tables:
        table.data = []


def _run_seed() -> int | None:
    """The run's seed (``seed_everything``, which Lightning exports as ``PL_GLOBAL_SEED``): it seeds the
    analysis's random nulls, so that runs of different seeds draw different ones."""
    seed = os.environ.get("PL_GLOBAL_SEED")
    return int(seed) if seed and seed.lstrip("-").isdigit() else None
