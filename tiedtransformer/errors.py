"""The one exception type users should see: a message that says what is wrong and what to do."""


class ConfigError(ValueError):
    """A bad option, file or combination; the CLI prints its message without a traceback."""


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. non-finite loss); the CLI prints the message, exits non-zero."""


class WriteError(TrainingError):
    """A file of a run could not be written (disk full, quota, permissions). The writers are atomic,
    so what was there before is intact; the CLI prints the message and exits non-zero."""


def first_line(e: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (a library's can run to many), for one-line errors."""
    lines = str(e).strip().splitlines()
    return lines[0][:limit] if lines else type(e).__name__
