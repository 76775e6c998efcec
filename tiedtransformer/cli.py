"""``tiedtransformer``: LightningCLI (fit, validate, test, predict) plus ``info``.

The commands are a plain dict (:data:`COMMANDS`); ``fit`` gives each run its own directory with the
resolved config, checkpoints, ``metrics.csv``, W&B files and ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
from pathlib import Path

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from tiedtransformer.callbacks import (
    CheckpointAveraging,
    CheckpointOnFailure,
    EmbeddingSnapshot,
    RunSummary,
    SimilarityReport,
    TranslationWriter,
)
from tiedtransformer.data.datamodule import TranslationData
from tiedtransformer.errors import ConfigError, TrainingError
from tiedtransformer.model.network import TiedTransformer, TransformerConfig
from tiedtransformer.training.module import TranslationModule, accumulation_steps
from tiedtransformer.training.precision import default_precision, slow_bf16_warning
from tiedtransformer.training.resilient_logger import ResilientLogger
from tiedtransformer.training.runs import (
    RunOptions,
    check_free_space,
    checkpoint_bytes,
    decide_wandb_mode,
    default_run_name,
    make_run_dir,
)
from tiedtransformer.training.sweep import RUN_NAME_ENV

RUN_DIR_ENV = "TIEDTRANSFORMER_RUN_DIR"  # lets DDP processes started by rank 0 share its run directory
RESUMING_ENV = "TIEDTRANSFORMER_RESUMING"  # ... and know whether it resumes

TRAINER_DEFAULTS = {
    "max_epochs": 12,
    "gradient_clip_val": 1.0,
    "log_every_n_steps": 50,
}


class TiedCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.vocab_size", "model.vocab_size")
        parser.link_arguments("data.joint_vocab", "model.joint_vocab")
        parser.add_class_arguments(RunOptions, "run")
        parser.add_lightning_class_args(RunSummary, "summary")
        parser.add_lightning_class_args(TranslationWriter, "translations")
        parser.add_lightning_class_args(EmbeddingSnapshot, "snapshot")  # before the report: it reads the dumps
        parser.add_lightning_class_args(SimilarityReport, "similarity")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(CheckpointOnFailure, "on_failure")
        parser.add_lightning_class_args(CheckpointAveraging, "average")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/loss",
                "checkpoint.mode": "min",
                "checkpoint.save_last": True,
                "checkpoint.filename": "epoch{epoch:02d}-step{step}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )

    def _parse_ckpt_path(self) -> None:
        """LightningCLI would silently replace the model options with the checkpoint's; here the
        options stay as given, and a checkpoint that does not match them is refused with a message
        (TranslationModule.on_load_checkpoint)."""

    def before_instantiate_classes(self) -> None:
        self.run_dir, self.resuming, self.placeholder, self.created_run_dir = None, False, False, False
        self._resolve_precision(self.config[self.subcommand].trainer)
        if self.subcommand != "fit":
            return
        cfg = self.config.fit
        child = _not_rank_zero()
        run_dir = os.environ.get(RUN_DIR_ENV) if child else None
        if run_dir is not None:  # a DDP/FSDP process started by rank 0: its directory, resuming as it does
            self.resuming = os.environ.get(RESUMING_ENV) == "1"
        else:
            run_dir = self._resumed_run_dir(cfg)
        # On another node nothing tells this process rank 0's directory before the process group
        # exists: it creates none (rank 0 writes everything; Lightning gives every rank rank 0's
        # checkpoint folder), and works with the name it would have chosen.
        self.placeholder = run_dir is None and child
        self.created_run_dir = run_dir is None and not child
        if run_dir is None:
            name = cfg.run.name or os.environ.get(RUN_NAME_ENV) or default_run_name(cfg.model.tying, cfg.data.direction)
            run_dir = str(Path(cfg.run.root).expanduser() / name) if child else str(make_run_dir(cfg.run.root, name))
        # Processes started by this one use the same directory, and resume if it does: every rank
        # must set up the same callbacks, or their collectives (config saving) wait on each other.
        if not self.placeholder:
            os.environ[RUN_DIR_ENV], os.environ[RESUMING_ENV] = run_dir, "1" if self.resuming else "0"
        self.run_dir = Path(run_dir)
        cfg.trainer.default_root_dir = run_dir
        cfg.checkpoint.dirpath = str(self.run_dir / "checkpoints")
        if self.placeholder:
            print("run directory: rank 0's (this process is on another node)", flush=True)
        else:
            print(f"run directory: {self.run_dir}" + (" (resuming)" if self.resuming else ""), flush=True)

    def _resolve_precision(self, trainer_cfg) -> None:
        """Unset, ``trainer.precision`` becomes bf16 autocast where the hardware runs bf16 natively and
        fp32 elsewhere; the choice is printed and saved in the run's config.yaml."""
        accelerator = trainer_cfg.get("accelerator")
        accelerator = accelerator if isinstance(accelerator, str) or accelerator is None else "custom"
        loud = not _not_rank_zero()
        if trainer_cfg.get("precision") is None:
            trainer_cfg.precision, why = default_precision(accelerator)
            if loud:
                print(f"precision: {trainer_cfg.precision} ({why}); --trainer.precision sets it", flush=True)
        elif loud and (warning := slow_bf16_warning(trainer_cfg.precision, accelerator)):
            print(warning, file=sys.stderr, flush=True)

    def _resumed_run_dir(self, cfg) -> str | None:
        """Resuming (``--ckpt_path``) continues the run directory the checkpoint belongs to."""
        ckpt = cfg.get("ckpt_path")
        if not ckpt:
            return None
        if ckpt == "last":
            run_dir = Path(cfg.trainer.default_root_dir or "")
            if not (run_dir / "checkpoints").is_dir():
                raise ConfigError(
                    "--ckpt_path last needs the run directory to resume: give the run's own config "
                    "(-c runs/X/config.yaml), or the checkpoint file (--ckpt_path runs/X/checkpoints/last.ckpt)"
                )
        else:
            path = Path(ckpt)
            if not path.is_file():
                raise ConfigError(f"--ckpt_path {ckpt}: no such checkpoint file")
            run_dir = path.resolve().parent.parent
            if (
                path.resolve().parent.name != "checkpoints"
                or not (run_dir / "summary.json").exists()
                and not (run_dir / "config.yaml").exists()
            ):
                return None  # a checkpoint from elsewhere: a new run directory starts from it
        self.resuming = True
        return str(run_dir)

    def instantiate_trainer(self, **kwargs):
        if self.subcommand == "fit":
            kwargs["logger"] = self._loggers()
        if self.subcommand != "fit" or self.resuming:  # never overwrite the config.yaml of a run
            self.save_config_callback = None
        try:
            _check_strategy(self.config[self.subcommand].trainer.get("strategy"))
            trainer = super().instantiate_trainer(**kwargs)
            if self.subcommand == "fit":
                self._set_accumulation(trainer)
            return trainer
        except (ConfigError, ValueError, TypeError, MisconfigurationException) as e:  # Lightning checks options here
            if self.created_run_dir and not any(self.run_dir.iterdir()):
                self.run_dir.rmdir()  # nothing ran: leave no empty run behind
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(
                f"the trainer options do not go together: {e} Change them on the command line "
                "(--trainer.accelerator, --trainer.strategy, --trainer.devices, ...) or in the config file's "
                "trainer section; `tiedtransformer fit --help` lists them."
            ) from None

    def _set_accumulation(self, trainer) -> None:
        """``model.tokens_per_update`` decides the gradient accumulation, once the number of devices is known."""
        cfg = self.config.fit
        target, max_tokens = cfg.model.tokens_per_update, cfg.data.max_tokens
        if target:
            if cfg.trainer.accumulate_grad_batches != 1:
                raise ConfigError(
                    f"model.tokens_per_update={target} sets the gradient accumulation itself; leave out "
                    f"trainer.accumulate_grad_batches={cfg.trainer.accumulate_grad_batches}, or set model.tokens_per_update=null"
                )
            trainer.accumulate_grad_batches = accumulation_steps(target, max_tokens, trainer.world_size)
        if _not_rank_zero():
            return
        k, world = trainer.accumulate_grad_batches, trainer.world_size
        print(
            f"tokens per update: up to {max_tokens * world * k:,} per side (data.max_tokens={max_tokens} x {world} "
            f"device(s) x {k} accumulated batch(es))",
            flush=True,
        )

    def _loggers(self) -> list:
        cfg = self.config.fit
        # A resumed run logs into resume-N/metrics.csv: CSVLogger would delete an existing metrics.csv.
        version = ""
        if self.resuming:
            version = f"resume-{1 + len(list(self.run_dir.glob('resume-*')))}"
        loggers = [CSVLogger(save_dir=self.run_dir, name="", version=version)]
        mode, why = decide_wandb_mode(cfg.run.wandb)
        if mode == "disabled":
            print("W&B: disabled; metrics go to metrics.csv", flush=True)
            return loggers
        from lightning.pytorch.loggers import WandbLogger

        tags = [f"tying:{cfg.model.tying}", f"direction:{cfg.data.direction}", *cfg.run.wandb_tags]
        group = cfg.run.wandb_group or os.environ.get("WANDB_RUN_GROUP")
        if group is None and os.environ.get("WANDB_SWEEP_ID"):  # runs of one agent's sweep: one group
            group = f"sweep-{os.environ['WANDB_SWEEP_ID']}"
        wandb_logger = WandbLogger(
            project=cfg.run.wandb_project,
            entity=cfg.run.wandb_entity,
            group=group,
            name=self.run_dir.name,
            save_dir=str(self.run_dir),
            tags=tags,
            offline=mode == "offline",
            config=_plain(self.config.fit),
            job_type="fit",
        )
        loggers.append(
            ResilientLogger(wandb_logger, advice=f"Sync what W&B has later: wandb sync {self.run_dir}/wandb/*-run-*")
        )
        if mode == "offline":
            print(f"W&B: offline ({why}); later: wandb sync {self.run_dir}/wandb/offline-run-*", flush=True)
        return loggers

    def before_fit(self) -> None:
        if not self.placeholder:
            check_free_space(self.run_dir, checkpoint_bytes(self.model.net.num_params()))

    def after_fit(self) -> None:
        if not self.placeholder:
            print(f"run directory: {self.run_dir}", flush=True)


def _not_rank_zero() -> bool:
    """Whether the launcher says this process is not global rank 0: Lightning's own child processes
    and torchrun (LOCAL_RANK, RANK), another node under Lightning (NODE_RANK) or SLURM (SLURM_PROCID)."""
    return any(int(os.environ.get(v) or 0) > 0 for v in ("LOCAL_RANK", "RANK", "NODE_RANK", "SLURM_PROCID"))


def _check_strategy(strategy) -> None:
    name = strategy if isinstance(strategy, str) else str(getattr(strategy, "class_path", ""))
    if name.startswith("fsdp") or name.endswith("FSDPStrategy"):
        raise ConfigError(
            f"--trainer.strategy={name}: Lightning's FSDPStrategy (FSDP1) is not supported here. For FSDP add "
            "-c configs/fsdp.yaml (FSDP2 through ModelParallelStrategy, tied matrices sharded as one "
            "group); for plain data parallelism use --trainer.strategy=ddp."
        )


def _plain(namespace) -> dict:
    """A jsonargparse Namespace as plain JSON-able data (for W&B's config)."""
    return json.loads(json.dumps(namespace.as_dict(), default=str))


def _cli(args: list[str], run: bool = True, cls: type[LightningCLI] = TiedCLI) -> LightningCLI:
    saved, sys.argv = sys.argv, [sys.argv[0], *args]  # LightningCLI parses sys.argv (and DDP re-runs it)
    try:
        return _make_cli(cls, run)
    finally:
        sys.argv = saved


def _make_cli(cls: type[LightningCLI], run: bool) -> LightningCLI:
    return cls(
        TranslationModule,
        TranslationData,
        run=run,
        trainer_defaults=TRAINER_DEFAULTS,
        seed_everything_default=0,
        parser_kwargs={"parser_mode": "omegaconf"},
        auto_configure_optimizers=False,  # TranslationModule.configure_optimizers is the one place
    )


class _ParseOnly(TiedCLI):
    """Parses and links the config like ``fit`` would, and instantiates nothing."""

    def before_instantiate_classes(self) -> None:
        pass

    def instantiate_classes(self) -> None:
        pass

    def _set_seed(self) -> None:
        pass


def info(args: list[str]) -> dict:
    """Parameter accounting of the configured network, built on the meta device (no data, no memory)."""
    cfg = _cli(args, run=False, cls=_ParseOnly).config
    fields = {f.name for f in dataclasses.fields(TransformerConfig)}
    with torch.device("meta"):
        net = TiedTransformer(TransformerConfig(**{k: v for k, v in cfg.model.items() if k in fields}))
    shapes = {name: list(w.shape) for name, w in net.embedding_matrices().items()}
    tied = net.tied_with()
    return {
        "tying": net.cfg.tying,
        "unique_params": net.num_params(unique=True),
        "untied_params": net.num_params(unique=False),
        "embedding_params": net.embedding_params(),
        "matrices": {name: {"shape": shapes[name], "shares_storage_with": tied[name]} for name in shapes},
    }


def _fit_etc(args: list[str]) -> None:
    try:
        _cli(args)
    finally:
        os.environ.pop(RUN_DIR_ENV, None)  # the next command in this process makes its own


def analyze(args: list[str]) -> None:
    """``tiedtransformer analyze PATH``: the similarity analysis of a dump directory or checkpoint."""
    import argparse

    from tiedtransformer.analysis.dumps import read_any
    from tiedtransformer.analysis.report import analyze_to_dir

    p = argparse.ArgumentParser(prog="tiedtransformer analyze", description=analyze.__doc__)
    p.add_argument("path", help="embedding dump directory (from EmbeddingSnapshot) or a fit checkpoint (.ckpt)")
    p.add_argument("--top-k", type=int, default=1000, help="pairs kept per matrix, most and least similar")
    p.add_argument("--knn-k", type=int, default=10, help="nearest neighbours per token")
    p.add_argument("--bins", type=int, default=200, help="bins of the cosine histogram")
    p.add_argument("--min-count", type=int, default=0, help="leave out tokens seen fewer times in training")
    p.add_argument("--out", help="output folder (default: the dump itself, or <checkpoint>-analysis)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args(args)
    dump = read_any(a.path)
    out = a.out or (a.path if Path(a.path).is_dir() else str(Path(a.path).with_suffix("")) + "-analysis")
    report, _ = analyze_to_dir(
        dump,
        out,
        a.top_k,
        a.knn_k,
        a.bins,
        a.min_count,
        a.device,
        progress=lambda name: print(f"analysed {name}", flush=True),
    )
    for name, m in report["matrices"].items():
        note = f" (identical to {m['identical_to']})" if m["identical_to"] else ""
        print(f"{name:10s} mean top-{a.top_k} {m['mean_top']:.3f}  mean bottom {m['mean_bottom']:.3f}{note}")
    print(f"report: {Path(out) / 'report.md'}")


def average(args: list[str]) -> None:
    """``tiedtransformer average RUN_DIR --last N [--out FILE]``: average the weights of a run's last N
    step or epoch checkpoints (or of the checkpoint files given) into one checkpoint."""
    import argparse

    from tiedtransformer.training.averaging import average_checkpoints, last_checkpoints

    p = argparse.ArgumentParser(prog="tiedtransformer average", description=average.__doc__)
    p.add_argument("paths", nargs="+", help="a run directory, or the checkpoint files to average")
    p.add_argument("--last", type=int, default=5, help="with a run directory: how many of its newest checkpoints")
    p.add_argument("--out", help="the averaged checkpoint (default: RUN_DIR/checkpoints/averaged-lastN.ckpt)")
    a = p.parse_args(args)
    if a.last < 1:
        raise ConfigError(f"--last {a.last}: average at least one checkpoint")
    if len(a.paths) == 1 and Path(a.paths[0]).is_dir():
        run_dir = Path(a.paths[0])
        paths = last_checkpoints(run_dir, a.last)
        out = a.out or run_dir / "checkpoints" / f"averaged-last{a.last}.ckpt"
    else:
        paths = [Path(x) for x in a.paths]
        if not a.out:
            raise ConfigError("averaging checkpoint files needs --out FILE")
        out = a.out
    written = average_checkpoints(paths, out)
    print(f"averaged {len(paths)} checkpoints ({', '.join(p.name for p in paths)}) into {written}")


def sweep(args: list[str]) -> None:
    """``tiedtransformer sweep SWEEP.yaml --local [--dry-run]``: run a W&B sweep config without a server."""
    import argparse

    from tiedtransformer.training.sweep import run_local

    p = argparse.ArgumentParser(prog="tiedtransformer sweep", description=sweep.__doc__)
    p.add_argument("sweep", help="a W&B sweep config (sweeps/*.yaml)")
    p.add_argument("--local", action="store_true", help="run here, one run after another (no W&B server)")
    p.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    p.add_argument("--root", default="runs", help="where the runs' directories are (to skip finished ones)")
    p.add_argument("--seed", type=int, default=0, help="seed of random/bayes sampling")
    a = p.parse_args(args)
    if not a.local:
        raise ConfigError(
            f"with a W&B server: `wandb sweep {a.sweep}` then `wandb agent <sweep id>`; without one, add --local"
        )
    if run_local(a.sweep, dry_run=a.dry_run, root=a.root, seed=a.seed):
        sys.exit(1)


def compare(args: list[str]) -> None:
    """``tiedtransformer compare RUN_DIR... --out report.html``: the runs side by side, offline."""
    import argparse

    from tiedtransformer.analysis.compare import write_comparison

    p = argparse.ArgumentParser(prog="tiedtransformer compare", description=compare.__doc__)
    p.add_argument("runs", nargs="+", help="run directories (each with summary.json)")
    p.add_argument("--out", default="report.html", help="the HTML page; .md and .csv tables go beside it")
    a = p.parse_args(args)
    for kind, path in write_comparison(a.runs, a.out).items():
        print(f"{kind}: {path}")


COMMANDS = {
    "fit": _fit_etc,
    "validate": _fit_etc,
    "test": _fit_etc,
    "predict": _fit_etc,
    "info": lambda args: print(json.dumps(info(args), indent=2)),
    "analyze": analyze,
    "average": average,
    "sweep": sweep,
    "compare": compare,
}


def _message(e: ConfigError) -> str:
    text = str(e)  # a ConfigError re-raised from a DataLoader worker carries the worker's traceback
    marker = "ConfigError: "
    return text[text.rindex(marker) + len(marker) :].strip() if "Original Traceback" in text else text


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else None
    if command not in COMMANDS:
        if command in (None, "-h", "--help"):
            print("usage: tiedtransformer {" + ",".join(COMMANDS) + "} [-c CONFIG] [--section.option=value ...]")
            print("       tiedtransformer COMMAND --help   lists every option with its default")
            return
        print(f"error: unknown command {command!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        sys.exit(2)
    failed = True
    try:
        if command in ("info", "analyze", "average", "sweep", "compare"):
            COMMANDS[command](argv[1:])
        else:
            COMMANDS[command](argv)
        failed = False
    except ConfigError as e:
        print(f"error: {_message(e)}", file=sys.stderr)
        sys.exit(2)
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except SIGTERMException:
        print("stopped by SIGTERM", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    finally:
        _finish_wandb(failed)


def _finish_wandb(failed: bool) -> None:
    """Close the W&B run of this command (flushes it; a later fit in the same process gets its own)."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1 if failed else 0)
