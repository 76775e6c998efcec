"""Trainer options that cannot work with this project's data or sharding, refused with what to do instead
before anything is built (Lightning would stop at its first step with a traceback)."""

from __future__ import annotations

from tiedtransformer.errors import ConfigError


def is_fraction(value, zero_allowed: bool = True) -> bool:
    """A fraction of an epoch or a set, as Lightning reads the number (a whole float above 1, as the CLI
    may parse "2", is a count)."""
    return isinstance(value, float) and (0.0 < value < 1.0 or (value == 0.0 and not zero_allowed))


# which options of the trainer read which stream, per command
_STREAM_LIMITS = {
    "fit": ("overfit_batches", "limit_train_batches", "limit_val_batches"),
    "validate": ("limit_val_batches",),
    "test": ("limit_test_batches",),
}


def check_stream_options(cfg, subcommand: str) -> None:
    """Every training, validation and test set here is a stream of token buckets whose length is known
    only once it has been read (an IterableDataset, whatever ``data.source``): Lightning cannot take a
    fraction of it, and would stop at its first step with a traceback. Refused here, before anything is built.
    Also: ``model.val_every_n_steps`` and the options it replaces."""
    trainer = cfg.trainer
    interval = trainer.get("val_check_interval") if subcommand == "fit" else None
    if is_fraction(interval, zero_allowed=False):
        raise ConfigError(
            f"trainer.val_check_interval={interval}: the training set is a stream whose length is not known in "
            "advance, so a fraction of an epoch cannot be counted. Validate every N optimizer steps with "
            "model.val_every_n_steps=N (or every N training batches with trainer.val_check_interval=N, an int, "
            "or by wall time with trainer.val_check_interval=DD:HH:MM:SS)."
        )
    for option in _STREAM_LIMITS.get(subcommand, ()):
        if is_fraction(limit := trainer.get(option)):
            raise ConfigError(
                f"trainer.{option}={limit}: the data is a stream whose length is not known in advance, so a "
                "fraction of it cannot be counted. Give a number of batches (an int), or 0 / 1.0 (none / all)."
            )
    every = cfg.model.get("val_every_n_steps") if subcommand == "fit" else None
    if every is None:
        return
    if every < 1:
        raise ConfigError(f"model.val_every_n_steps={every}: give a number of optimizer steps >= 1, or null")
    if not (interval is None or (isinstance(interval, float) and interval == 1.0)):
        raise ConfigError(
            f"model.val_every_n_steps={every} and trainer.val_check_interval={interval} both say when to validate: "
            "keep one (val_every_n_steps counts optimizer steps, val_check_interval training batches)"
        )
    if trainer.get("check_val_every_n_epoch") not in (None, 1):
        raise ConfigError(
            f"model.val_every_n_steps={every} counts optimizer steps across epochs: leave out "
            f"trainer.check_val_every_n_epoch={trainer.check_val_every_n_epoch}"
        )


def check_strategy(strategy) -> None:
    """Lightning's FSDPStrategy (FSDP1) is refused: FSDP here is FSDP2 through configs/fsdp.yaml."""
    name = strategy if isinstance(strategy, str) else str(getattr(strategy, "class_path", ""))
    if name.startswith("fsdp") or name.endswith("FSDPStrategy"):
        raise ConfigError(
            f"--trainer.strategy={name}: Lightning's FSDPStrategy (FSDP1) is not supported here. For FSDP add "
            "-c configs/fsdp.yaml (FSDP2 through ModelParallelStrategy, tied matrices sharded as one "
            "group); for plain data parallelism use --trainer.strategy=ddp."
        )
