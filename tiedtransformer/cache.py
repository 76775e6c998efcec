"""The project's cache folder (trained vocabularies, random nulls): ``$TIEDTRANSFORMER_CACHE``, else
the configured folder, else ``~/.cache/tiedtransformer``."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CACHE = "~/.cache/tiedtransformer"


def cache_root(configured: str = DEFAULT_CACHE) -> Path:
    return Path(os.environ.get("TIEDTRANSFORMER_CACHE") or configured).expanduser()
