"""Atomic writes: a file or folder appears whole or not at all (a killed process or a full disk leaves
what was there before). Every file the project writes goes through these."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tiedtransformer.errors import WriteError

_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}$")  # tempfile's names: prefix ".NAME.", 8 random characters


def is_temporary(name: str) -> bool:
    """Whether ``name`` is one of this module's temporaries (left behind when a writer was killed)."""
    return bool(_TEMPORARY.match(name))


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path`` for the block to write; when the block ends without an error it
    is flushed to disk and renamed over ``path`` (readers see the old file or the new one, never a
    part), otherwise removed. The one atomic file writer of the project."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as e:
        raise _write_error(path, e) from None
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give it a normal file's mode
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise _write_error(path, e) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_error(path: Path, e: OSError) -> WriteError:
    return WriteError(
        f"could not write {path}: {e.strerror or e}. What was there before is intact; free disk space "
        "(or fix the folder's permissions) and run again (a fit resumes with --ckpt_path last)"
    )


@contextmanager
def atomic_dir(path: str | Path, replace: bool = True) -> Iterator[Path]:
    """A temporary folder beside ``path`` for the block to fill; when the block ends without an error
    its files are flushed to disk and the folder renamed into place (readers see the old folder or the
    new one, never a part), otherwise removed. An existing ``path`` is replaced, or, with
    ``replace=False``, kept (another process finished the same work first) and the new one dropped.
    The directory counterpart of :func:`atomic_path` (embedding dumps, vocabularies)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    except OSError as e:
        raise _write_error(path, e) from None
    try:
        try:
            yield tmp
            for f in tmp.rglob("*"):
                if f.is_file():
                    with open(f, "rb") as fh:
                        os.fsync(fh.fileno())
        except OSError as e:
            raise _write_error(path, e) from None
        old = None
        if path.exists() and replace:
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
        try:
            tmp.rename(path)
        except OSError as e:
            if old is not None:  # put the previous folder back
                old.rename(path)
            if replace or not path.exists():
                raise _write_error(path, e) from None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | Path, obj, sort_keys: bool = True) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys, default=str) + "\n")
