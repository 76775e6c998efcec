"""``tiedtransformer``: the command line. The commands are a plain dict (:data:`COMMANDS`); fit,
validate, test, predict and info run LightningCLI (:mod:`tiedtransformer.lightning_cli`, imported
only for them), the others are typed functions (:mod:`tiedtransformer.commands`) that start without
importing Lightning.
"""

from __future__ import annotations

import gc
import json
import signal
import sys

from tiedtransformer import commands
from tiedtransformer.commands import run_function
from tiedtransformer.errors import ConfigError, TrainingError
from tiedtransformer.moved_options import check_moved_keys


def _lightning(name: str):
    def command(args: list[str]) -> None:
        from tiedtransformer import lightning_cli

        return getattr(lightning_cli, name)(args)

    return command


COMMANDS = {
    "fit": _lightning("fit_etc"),
    "validate": _lightning("fit_etc"),
    "test": _lightning("fit_etc"),
    "predict": _lightning("fit_etc"),
    "info": lambda args: print(json.dumps(_lightning("info")(args), indent=2)),
    "analyze": lambda args: run_function(commands.analyze, args),
    "average": lambda args: run_function(commands.average, args),
    "sweep": lambda args: run_function(commands.sweep, args),
    "compare": lambda args: run_function(commands.compare, args),
    "export": lambda args: run_function(commands.export, args),
    "translate": lambda args: run_function(commands.translate, args),
}


PLAIN_COMMANDS = ("info", "analyze", "average", "sweep", "compare", "export", "translate")


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
        check_moved_keys(argv[1:])
        COMMANDS[command](argv[1:] if command in PLAIN_COMMANDS else argv)
        failed = False
    except ConfigError as e:
        print(f"error: {_message(e)}", file=sys.stderr)
        sys.exit(2)
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except SystemExit as e:  # Lightning's SIGTERMException is one
        lightning = sys.modules.get("lightning.pytorch.utilities.exceptions")  # only if a command loaded it
        if lightning is None or not isinstance(e, lightning.SIGTERMException):
            raise
        print("stopped by SIGTERM", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    finally:
        _finish_wandb(failed)


def run() -> None:
    """The process's entry point (the ``tiedtransformer`` script, ``python -m tiedtransformer``):
    :func:`main`, then the objects alive at its end are frozen out of the interpreter's last garbage
    collection at exit, which walks them all (torch's modules alone take a noticeable fraction of a second). Everything is
    written and closed by then (W&B in :func:`main`, workers and temporary files by their atexit
    hooks, which still run)."""
    main()
    gc.freeze()


def _finish_wandb(failed: bool) -> None:
    """Close the W&B run of this command (flushes it; a later fit in the same process gets its own)."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1 if failed else 0)
