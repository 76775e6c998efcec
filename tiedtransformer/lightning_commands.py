"""The Lightning side of ``tiedtransformer``: LightningCLI (fit, validate, test, predict) and ``info``.

``fit`` gives each run its own directory with the resolved config, checkpoints, ``metrics.csv``, W&B
files and ``summary.json``. Imported by :mod:`tiedtransformer.cli` only for these commands: the
others start without Lightning.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, ProgressBar, ThroughputMonitor
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from tiedtransformer.callbacks import (
    CheckpointAveraging,
    CheckpointOnFailure,
    EmbeddingSnapshot,
    FinalCheckpoint,
    FinalTranslations,
    RngState,
    RunSummary,
    SimilarityReport,
    StreamProgressBar,
    TrainStreamPosition,
    TranslationWriter,
)
from tiedtransformer.data.datamodule import TranslationData
from tiedtransformer.errors import ConfigError
from tiedtransformer.model.network import TiedTransformer, TransformerConfig
from tiedtransformer.run.checkpoint import check_checkpoint
from tiedtransformer.run.checkpoint_io import CheckpointFiles
from tiedtransformer.run.files import RunDir
from tiedtransformer.run.label import wandb_run_name
from tiedtransformer.run.plan import (
    RESUMING_ENV,
    RUN_DIR_ENV,
    RunOptions,
    RunPlan,
    RunRequest,
    checkpoint_bytes,
    decide_wandb_mode,
    not_rank_zero,
    resolve,
)
from tiedtransformer.training.config_checks import check_strategy, check_stream_options
from tiedtransformer.training.module import TranslationModule
from tiedtransformer.training.options import accumulation_steps
from tiedtransformer.training.precision import default_precision, slow_bf16_warning
from tiedtransformer.training.resilient_logger import ResilientLogger

TRAINER_DEFAULTS = {
    "max_epochs": 12,
    "gradient_clip_val": 1.0,
    "log_every_n_steps": 50,
}


def default_callbacks() -> list:
    """Callbacks every command gets besides the configurable ones (LightningCLI appends them to
    ``--trainer.callbacks``): the random state in checkpoints, Lightning's throughput meter
    (``train/device/items_per_sec`` = target tokens/s; FLOP/s and MFU where the device's peak is known),
    its learning-rate monitor (``train/lr``, the scheduler's name, at every logged step) and the final
    weights in ``last.ckpt`` (before the configurable callbacks: CheckpointAveraging comes after it), and the
    final evaluation's translations in the run directory."""
    return [
        RngState(),
        FinalCheckpoint(),
        FinalTranslations(),
        ThroughputMonitor(batch_size_fn=len, length_fn=lambda batch: batch.num_tgt_tokens),
        LearningRateMonitor(logging_interval="step"),
    ]


class TiedCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.vocab_size", "model.net.vocab_size")
        parser.link_arguments("data.joint_vocab", "model.net.joint_vocab")
        parser.add_class_arguments(RunOptions, "run")
        # first: the stream's position must count a batch before any callback saves a checkpoint after it
        parser.add_lightning_class_args(TrainStreamPosition, "stream_position")
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
                "checkpoint.filename": RunDir.BEST_PATTERN,
                "checkpoint.auto_insert_metric_name": False,
            }
        )

    def _parse_ckpt_path(self) -> None:
        """LightningCLI would silently replace the model options with the checkpoint's; here the
        options stay as given, and a checkpoint that does not match them is refused with a message
        (TranslationModule.on_load_checkpoint)."""

    def before_instantiate_classes(self) -> None:
        self.run: RunPlan | None = None
        self._resolve_precision(self.config[self.subcommand].trainer)
        check_stream_options(self.config[self.subcommand], self.subcommand)
        if self.subcommand != "fit":
            self._check_ckpt_path(self.config[self.subcommand], self.config[self.subcommand].get("ckpt_path"))
            return
        cfg = self.config.fit
        request = RunRequest(
            root=cfg.run.root,
            name=cfg.run.name,
            tying=cfg.model.net.tying,
            direction=cfg.data.direction,
            ckpt_path=cfg.get("ckpt_path"),
            default_root_dir=cfg.trainer.get("default_root_dir"),
            checkpoint_dirpath=cfg.checkpoint.get("dirpath"),
            logger=cfg.trainer.get("logger"),
        )
        plan = resolve(request, os.environ)
        ckpt = cfg.get("ckpt_path")
        if ckpt == "last" and not plan.placeholder:
            if (ckpt := plan.run_dir.last_checkpoint()) is None:
                raise ConfigError(
                    f"--ckpt_path last: {plan.run_dir.checkpoints} holds no last*.ckpt to resume from (the run "
                    "stopped before its first checkpoint): start it again without --ckpt_path"
                )
        self._check_ckpt_path(cfg, ckpt)
        if plan.resuming and not not_rank_zero():
            for p in plan.run_dir.remove_partial_writes():
                print(f"removed {p}: a write the previous process did not finish", flush=True)
        if plan.create:
            plan = dataclasses.replace(plan, run_dir=plan.run_dir.create())
            plan.env[RUN_DIR_ENV] = str(plan.run_dir.path)
        # Processes started by this one use the same directory, and resume if it does: every rank
        # must set up the same callbacks, or their collectives (config saving) wait on each other.
        os.environ.update(plan.env)
        self.run = plan
        if not plan.placeholder:  # config.yaml records the run, so that `-c` it with --ckpt_path last resumes it
            cfg.run.root, cfg.run.name = str(plan.run_dir.path.parent), plan.run_dir.name
        print(plan.announce(), flush=True)

    def _check_ckpt_path(self, cfg, ckpt) -> None:
        """A checkpoint file given with --ckpt_path is checked before any data or model is built: it
        loads as data (nothing in it runs) and fits this config (``check_checkpoint``). Lightning's
        own ``last``/``best`` of validate, test and predict are checked as Lightning loads them."""
        if cfg.get("weights_only") is False:
            raise ConfigError(
                "--weights_only=false: checkpoints are loaded as data only (a checkpoint file can hold code "
                "that loading would run); leave the option out"
            )
        if ckpt is None or str(ckpt) in ("last", "best", "hpc", "registry") or not_rank_zero():
            return
        check_checkpoint(ckpt, TransformerConfig(**_fields(cfg.model.net, TransformerConfig)), cfg.data.direction)

    def _resolve_precision(self, trainer_cfg) -> None:
        """Unset, ``trainer.precision`` becomes bf16 autocast where the hardware runs bf16 natively and
        fp32 elsewhere; the choice is printed and saved in the run's config.yaml."""
        accelerator = trainer_cfg.get("accelerator")
        accelerator = accelerator if isinstance(accelerator, str) or accelerator is None else "custom"
        loud = not not_rank_zero()
        if trainer_cfg.get("precision") is None:
            trainer_cfg.precision, why = default_precision(accelerator)
            if loud:
                print(f"precision: {trainer_cfg.precision} ({why}); --trainer.precision sets it", flush=True)
        elif loud and (warning := slow_bf16_warning(trainer_cfg.precision, accelerator)):
            print(warning, file=sys.stderr, flush=True)

    def instantiate_trainer(self, **kwargs):
        if self.subcommand == "fit":  # the run directory's values, given to the trainer, not written to config.yaml
            kwargs["logger"] = self._loggers()
            kwargs["default_root_dir"] = str(self.run.run_dir.path)
            self.config_init.fit.checkpoint.dirpath = str(self.run.run_dir.checkpoints)
        init = self.config_init[self.subcommand]
        init.similarity.follow(init.snapshot)  # the report analyses the dumps the snapshot callback writes
        trainer_cfg = init.trainer
        given = trainer_cfg.get("callbacks") or []
        given = given if isinstance(given, list) else [given]
        if trainer_cfg.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in given):
            kwargs["callbacks"] = [*given, StreamProgressBar()]  # a streamed epoch's bar gets a total from epoch 2
        if self.subcommand != "fit" or self.run.resuming:  # never overwrite the config.yaml of a run
            self.save_config_callback = None
        try:
            check_strategy(self.config[self.subcommand].trainer.get("strategy"))
            trainer = super().instantiate_trainer(**kwargs)
            if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # not one the user configured
                trainer.strategy.checkpoint_io = CheckpointFiles()
            if self.subcommand == "fit":
                self._set_accumulation(trainer)
            return trainer
        except (ConfigError, ValueError, TypeError, MisconfigurationException) as e:  # Lightning checks options here
            if self.run is not None and self.run.create:
                self.run.run_dir.remove_if_empty()  # nothing ran: leave no empty run behind
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(
                f"the trainer options do not go together: {e} Change them on the command line "
                "(--trainer.accelerator, --trainer.strategy, --trainer.devices, ...) or in the config file's "
                "trainer section; `tiedtransformer fit --help` lists them."
            ) from None

    def _set_accumulation(self, trainer) -> None:
        """``model.tokens_per_update`` decides the gradient accumulation, once the number of devices is known;
        ``model.val_every_n_steps`` then the validation interval in training batches."""
        cfg = self.config.fit
        target, max_tokens = cfg.model.optim.tokens_per_update, cfg.data.max_tokens
        if target:
            if cfg.trainer.accumulate_grad_batches != 1:
                raise ConfigError(
                    f"model.optim.tokens_per_update={target} sets the gradient accumulation itself; leave out "
                    f"trainer.accumulate_grad_batches={cfg.trainer.accumulate_grad_batches}, or set "
                    "model.optim.tokens_per_update=null"
                )
            trainer.accumulate_grad_batches = accumulation_steps(target, max_tokens, trainer.world_size)
        k, world = trainer.accumulate_grad_batches, trainer.world_size
        if every := cfg.model.get("val_every_n_steps"):
            trainer.val_check_interval, trainer.check_val_every_n_epoch = every * k, None
        if not_rank_zero():
            return
        print(
            f"tokens per update: up to {max_tokens * world * k:,} per side (data.max_tokens={max_tokens} x {world} "
            f"device(s) x {k} accumulated batch(es))",
            flush=True,
        )
        if every:
            print(f"validation: every {every} optimizer steps ({every * k} training batches)", flush=True)

    def _loggers(self) -> list:
        cfg = self.config.fit
        run = self.run.run_dir
        loggers = [CSVLogger(save_dir=run.path, name="", version=run.metrics_version(self.run.resuming))]
        mode, why = decide_wandb_mode(cfg.run.wandb)
        if mode == "disabled":
            print(f"W&B: disabled; metrics go to {RunDir.METRICS}", flush=True)
            return loggers
        from lightning.pytorch.loggers import WandbLogger

        tags = [f"tying:{cfg.model.net.tying}", f"direction:{cfg.data.direction}", *cfg.run.wandb_tags]
        group = cfg.run.wandb_group or os.environ.get("WANDB_RUN_GROUP")
        if group is None and os.environ.get("WANDB_SWEEP_ID"):  # runs of one agent's sweep: one group
            group = f"sweep-{os.environ['WANDB_SWEEP_ID']}"
        wandb_logger = WandbLogger(
            project=cfg.run.wandb_project,
            entity=cfg.run.wandb_entity,
            group=group,
            name=wandb_run_name(cfg.data.direction, cfg.model.net.tying, cfg.seed_everything),  # config: run.name
            save_dir=str(run.path),
            tags=tags,
            offline=mode == "offline",
            config=_plain(self.config.fit),
            job_type="fit",
        )
        loggers.append(
            ResilientLogger(wandb_logger, advice=f"Sync what W&B has later: wandb sync {run.path}/wandb/*-run-*")
        )
        if mode == "offline":
            print(f"W&B: offline ({why}); later: wandb sync {run.path}/wandb/offline-run-*", flush=True)
        return loggers

    def before_fit(self) -> None:
        if not self.run.placeholder:
            self.run.run_dir.check_free_space(checkpoint_bytes(self.model.net.num_params()))

    def after_fit(self) -> None:
        if not self.run.placeholder:
            print(f"run directory: {self.run.run_dir.path}", flush=True)


def _fields(namespace, cls) -> dict:
    """The options of a config section that are fields of the dataclass ``cls``."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in namespace.items() if k in names}


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
    from jsonargparse import set_parsing_settings

    set_parsing_settings(docstring_parse_attribute_docstrings=True)  # config dataclass fields' docstrings as help
    return cls(
        TranslationModule,
        TranslationData,
        run=run,
        trainer_defaults={**TRAINER_DEFAULTS, "callbacks": default_callbacks()},
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
    with torch.device("meta"):
        net = TiedTransformer(TransformerConfig(**_fields(cfg.model.net, TransformerConfig)))
    shapes = {name: list(w.shape) for name, w in net.embedding_matrices().items()}
    tied = net.tied_with()
    return {
        "tying": net.cfg.tying,
        "unique_params": net.num_params(unique=True),
        "untied_params": net.num_params(unique=False),
        "embedding_params": net.embedding_params(),
        "matrices": {name: {"shape": shapes[name], "shares_storage_with": tied[name]} for name in shapes},
    }


def fit_etc(args: list[str]) -> None:
    try:
        _cli(args)
    finally:
        for key in (RUN_DIR_ENV, RESUMING_ENV):  # the next command in this process makes its own
            os.environ.pop(key, None)
