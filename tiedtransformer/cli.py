"""``tiedtransformer``: the command line. One table, :data:`COMMANDS` (name -> function): fit, validate,
test, predict and info run LightningCLI (:mod:`tiedtransformer.lightning_commands`, imported only for them); the
others are typed functions (:mod:`tiedtransformer.plain_commands`) that start without importing Lightning or
torch. A new command is a function in ``plain_commands.py`` and its line in the table.
"""

from __future__ import annotations

import gc
import json
import signal
import sys
from collections.abc import Callable

from tiedtransformer import plain_commands
from tiedtransformer.errors import ConfigError, TrainingError
from tiedtransformer.moved_options import check_moved_keys
from tiedtransformer.plain_commands import run_function


def _lightning(command: str) -> Callable[[list[str]], None]:
    """fit, validate, test, predict: LightningCLI (imported only for them) parses the command line."""

    def run(args: list[str]) -> None:
        from tiedtransformer.lightning_commands import fit_etc

        fit_etc([command, *args])

    return run


def _info(args: list[str]) -> None:
    """The network's parameter accounting, from the same options as fit."""
    from tiedtransformer.lightning_commands import info

    print(json.dumps(info(args), indent=2))


# Every command. A typed function of tiedtransformer.plain_commands gets its command line parsed from its signature
# and docstring; the others take the arguments after the command's name as they are.
COMMANDS: dict[str, Callable] = {
    **{name: _lightning(name) for name in ("fit", "validate", "test", "predict")},
    "info": _info,
    "analyze": plain_commands.analyze,
    "average": plain_commands.average,
    "sweep": plain_commands.sweep,
    "compare": plain_commands.compare,
    "export": plain_commands.export,
    "translate": plain_commands.translate,
}


def dispatch(command: str, args: list[str]) -> None:
    """Run ``command`` with the arguments after its name."""
    fn = COMMANDS[command]
    if fn.__module__ == plain_commands.__name__:
        run_function(fn, args)
    else:
        fn(args)


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
        dispatch(command, argv[1:])
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
