"""Where sentence pairs come from: the Hugging Face hub (streamed), local files, or the demo grammar.

Every source yields dicts ``{"en": ..., "de": ...}`` and splits itself across DDP ranks and
DataLoader workers so that each pair is read by exactly one process per epoch.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice, zip_longest
from pathlib import Path
from typing import Literal

import torch.utils.data

from tiedtransformer.data.demo_corpus import demo_pairs
from tiedtransformer.errors import ConfigError, TrainingError

LANGS = ("en", "de")
_ENDED = object()  # what zip_longest gives for a parallel file that has no more lines
Source = Literal["demo", "hub", "files"]


def worker_shard() -> tuple[int, int]:
    """(index, count) of the DataLoader worker this runs in; (0, 1) in the main process."""
    info = torch.utils.data.get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


def local_files(path: str, langs=LANGS) -> dict[str, Path]:
    """The files behind a local corpus path: ``X.jsonl``, ``X.tsv``, or a prefix ``X`` for ``X.en`` + ``X.de``."""
    p = Path(path).expanduser()
    if p.suffix in TABLE_READERS:
        return {"table": p}
    return {lang: p.with_name(f"{p.name}.{lang}") for lang in langs}


SKIP_INVALID = "data.skip_invalid_utf8=true"  # how a fit/predict config skips lines that are not UTF-8


def _decoded_lines(path: Path, skip_invalid: bool, skip_option: str = SKIP_INVALID) -> Iterator[str | None]:
    """Lines of a UTF-8 text file without line endings (LF or CRLF) or BOM; None for a line that is
    not valid UTF-8 when ``skip_invalid``, otherwise an error naming the file and line."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                if skip_invalid:
                    yield None
                    continue
                raise ConfigError(
                    f"{path}:{lineno}: not valid UTF-8 ({e.reason} at byte {e.start}). Fix or re-encode the "
                    f"file, or set {skip_option} to skip such lines."
                ) from None


@dataclass(frozen=True)
class Corpus:
    """One split of one source. Picklable: it is sent to DataLoader workers. What a source does is its reader's
    (:data:`READERS`); this class splits a source's pairs across ranks and workers."""

    source: Source
    split: str  # split name (hub, demo) and label in messages
    path: str | None = None  # files: see local_files()
    hub_dataset: str = "wmt/wmt14"
    hub_config: str | None = "de-en"
    demo_size: int = 0
    seed: int = 0
    skip_invalid_utf8: bool = False
    lines: tuple[int, int] | None = None  # files: only pairs start <= i < stop of the file (a held-out split)

    @property
    def reader(self) -> type[Reader]:
        return READERS[self.source]

    def describe(self) -> dict:
        """What identifies this corpus's content (for the vocabulary cache key)."""
        return self.reader.describe(self)

    def check(self) -> None:
        """Fail early, with the file names, on input that cannot be read (a missing file, parallel files of
        different lengths)."""
        self.reader.check(self)

    def pairs(self, rank: int = 0, world_size: int = 1, epoch: int = 0) -> Iterator[tuple[int, dict | None]]:
        """This process's share of ``(pair id, pair)``: split by rank, then by DataLoader worker. The id
        is the pair's position in the split (-1 from a source that splits itself, the hub); the pair is None
        for a line skipped as invalid UTF-8."""
        if self.reader.splits_itself:
            for pair in self.reader.rank_pairs(self, rank, world_size, epoch):
                yield -1, pair
            return
        worker, n_workers = worker_shard()
        shard, n_shards = rank * n_workers + worker, world_size * n_workers
        start, stop = self.lines or (0, None)
        for i, pair in enumerate(islice(self.reader.all_pairs(self), start, stop)):
            if i % n_shards == shard:
                yield i, pair

    def count(self) -> int:
        """Pairs in the whole source (invalid lines included), read once."""
        return sum(1 for _ in self.reader.all_pairs(self))


# --- one reader per source: a new source is a Reader, its name in READERS and in Source ------------------------


class Reader:
    """What one source does with a :class:`Corpus`: its pairs in order (``all_pairs``; the corpus splits them
    across ranks and workers), or, for a source that splits itself (``splits_itself``), one rank's
    (``rank_pairs``); what identifies its content; what to check before reading."""

    splits_itself = False

    @staticmethod
    def describe(c: Corpus) -> dict:
        raise NotImplementedError

    @staticmethod
    def check(c: Corpus) -> None:
        """Nothing to check up front."""

    @staticmethod
    def all_pairs(c: Corpus) -> Iterator[dict[str, str] | None]:
        raise NotImplementedError(f"data.source={c.source} splits itself across ranks: it has no pairs in order")

    @staticmethod
    def rank_pairs(c: Corpus, rank: int, world_size: int, epoch: int) -> Iterator[dict[str, str]]:
        raise NotImplementedError


class DemoReader(Reader):
    """Pairs generated offline from a small grammar (:mod:`tiedtransformer.data.demo_corpus`)."""

    @staticmethod
    def describe(c: Corpus) -> dict:
        return {"demo": [c.split, c.demo_size, c.seed]}

    @staticmethod
    def all_pairs(c: Corpus) -> Iterator[dict[str, str]]:
        return demo_pairs(c.split, c.demo_size, c.seed)


class FilesReader(Reader):
    """Local text: ``X.en`` + ``X.de``, or one ``.jsonl`` / ``.tsv`` file (:data:`TABLE_READERS`)."""

    @staticmethod
    def describe(c: Corpus) -> dict:
        files = {k: [str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for k, p in local_files(c.path).items()}
        return {"files": files, **({"lines": list(c.lines)} if c.lines else {})}

    @staticmethod
    def check(c: Corpus) -> None:
        if not c.path:
            raise ConfigError(f"data.source=files needs data.{c.split}_path")
        files = local_files(c.path)
        for p in files.values():
            if not p.is_file():
                raise ConfigError(
                    f"{c.split} corpus file {p} does not exist (from data.{c.split}_path={c.path!r}); "
                    "give a prefix X for X.en + X.de, or a .jsonl or .tsv file"
                )
        if "table" not in files:
            counts = {lang: sum(1 for _ in open(p, "rb")) for lang, p in files.items()}
            if len(set(counts.values())) > 1:
                a, b = files.items()
                raise ConfigError(
                    f"parallel files differ in length: {a[1]} has {counts[a[0]]} lines, {b[1]} has "
                    f"{counts[b[0]]}; line N of each must translate the other"
                )

    @staticmethod
    def all_pairs(c: Corpus) -> Iterator[dict[str, str] | None]:
        files = local_files(c.path)
        if "table" in files:
            return TABLE_READERS[files["table"].suffix](files["table"], c.skip_invalid_utf8)
        return _parallel_pairs(files, c.skip_invalid_utf8)


class HubReader(Reader):
    """A Hugging Face dataset, streamed (or a local folder of shards in the hub's schema)."""

    splits_itself = True  # the datasets library splits a stream across ranks and workers

    @staticmethod
    def describe(c: Corpus) -> dict:
        return {"hub": [c.hub_dataset, c.hub_config, c.split]}

    @staticmethod
    def rank_pairs(c: Corpus, rank: int, world_size: int, epoch: int) -> Iterator[dict[str, str]]:
        import datasets
        from datasets.distributed import split_dataset_by_node

        try:
            ds = datasets.load_dataset(c.hub_dataset, c.hub_config, split=c.split, streaming=True)
        except Exception as e:  # offline, unknown name or split: the library's message, our advice
            raise ConfigError(
                f"could not open {c.hub_dataset!r} (config {c.hub_config!r}, split {c.split!r}) "
                f"from the Hugging Face hub: {type(e).__name__}: {e}. Check data.hub_dataset / data.hub_config / "
                f"data.{c.split}_split and the network (HF_HUB_OFFLINE), or use data.source=files."
            ) from None
        if world_size > 1:  # by shard when they divide evenly, else by example; workers split by the library
            ds = split_dataset_by_node(ds, rank=rank, world_size=world_size)
        if c.split == "train":
            # Shard order, and a small buffer; pairs are shuffled downstream (data.shuffle_buffer). One
            # shard at a time: by default datasets interleaves 10 shards re-batched to buffer_size / 10
            # rows, which ran many times slower and held memory in proportion to the shards still unread
            # (benchmarks/stream_memory.py). Versions without the option are called without it.
            one_shard = (
                {"max_buffer_input_shards": 1}
                if "max_buffer_input_shards" in inspect.signature(ds.shuffle).parameters
                else {}
            )
            ds = ds.shuffle(seed=c.seed, buffer_size=1000, **one_shard)
            ds.set_epoch(epoch)
        for row in ds:
            try:
                yield {lang: row["translation"][lang] for lang in LANGS}
            except (KeyError, TypeError):
                raise ConfigError(
                    f"{c.hub_dataset!r} rows must look like {{'translation': {{'de': ..., 'en': ...}}}}; "
                    f"got keys {sorted(row)}"
                ) from None


READERS: dict[str, type[Reader]] = {"demo": DemoReader, "hub": HubReader, "files": FilesReader}
"""Each name of :data:`Source` (the option ``data.source``) and its reader."""


# --- one reader per local format: a pair per line (None: a line skipped as invalid UTF-8) -----------------


def _parallel_pairs(files: dict[str, Path], skip_invalid: bool) -> Iterator[dict[str, str] | None]:
    """``X.en`` + ``X.de``: line N of each translates the other."""
    streams = [_decoded_lines(files[lang], skip_invalid) for lang in LANGS]
    for lineno, texts in enumerate(zip_longest(*streams, fillvalue=_ENDED), 1):
        if _ENDED in texts:  # check() catches this up front; a file that changed since must not lose pairs
            ended = [lang for lang, t in zip(LANGS, texts) if t is _ENDED]
            short, long = files[ended[0]], files[next(g for g in LANGS if g not in ended)]
            raise ConfigError(
                f"{long}:{lineno}: has more lines than {short} (which ends at line {lineno - 1}); "
                "line N of each parallel file must translate the other"
            )
        yield None if None in texts else dict(zip(LANGS, texts))


def _jsonl_pairs(path: Path, skip_invalid: bool) -> Iterator[dict[str, str] | None]:
    """``X.jsonl``: one object per line, ``{"en": ..., "de": ...}`` or ``{"translation": {...}}``."""
    for lineno, line in enumerate(_decoded_lines(path, skip_invalid), 1):
        if line is None or not line.strip():  # a blank line: an empty pair, skipped and counted downstream
            yield None if line is None else dict.fromkeys(LANGS, "")
            continue
        try:
            row = json.loads(line)
            pair = {lang: (row.get("translation") or row)[lang] for lang in LANGS}
            if not all(isinstance(t, str) for t in pair.values()):
                raise TypeError
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError, RecursionError):
            raise ConfigError(
                f"{path}:{lineno}: expected a JSON object with string values for keys {LANGS} (or "
                '{"translation": {...}}), got: ' + repr(line[:80])
            ) from None
        if not all(_encodable(t) for t in pair.values()):  # a \ud800 escape: a lone surrogate
            if not skip_invalid:
                raise ConfigError(
                    f"{path}:{lineno}: a string holds a lone surrogate (an escape such as \\ud800), "
                    "which is not text. Fix the file, or set data.skip_invalid_utf8=true to skip such lines."
                )
            pair = None
        yield pair


def _tsv_pairs(path: Path, skip_invalid: bool) -> Iterator[dict[str, str] | None]:
    """``X.tsv``: two tab-separated columns, English then German unless a header line names them."""
    columns = list(LANGS)
    for lineno, line in enumerate(_decoded_lines(path, skip_invalid), 1):
        if line is None or not line.strip():  # a blank line: an empty pair, skipped and counted downstream
            yield None if line is None else dict.fromkeys(LANGS, "")
            continue
        cells = line.split("\t")
        if lineno == 1 and sorted(cells) == sorted(LANGS):  # optional header names the columns
            columns = cells
            continue
        if len(cells) != 2:
            raise ConfigError(f"{path}:{lineno}: expected 2 tab-separated columns {columns}, got {len(cells)}")
        yield dict(zip(columns, cells))


# a file with one of these suffixes holds both sides (local_files); any other path is a prefix of X.en + X.de
TABLE_READERS = {".jsonl": _jsonl_pairs, ".tsv": _tsv_pairs}


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def read_lines(
    path: str, skip_invalid_utf8: bool = False, option: str = "data.predict_path", skip_option: str = SKIP_INVALID
) -> list[str | None]:
    """Source sentences to translate, one per line (``predict``, ``translate``); None for a line that is not
    valid UTF-8 when ``skip_invalid_utf8``, otherwise that line is an error naming it."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{option}={path!r}: no such file ({os.getcwd()})")
    return list(_decoded_lines(p, skip_invalid_utf8, skip_option))


def output_lines(translated: list[tuple[int, str]], blank: list[int], n: int) -> list[str]:
    """One output line per input line, in input order: the translations by line position, an empty
    line for each blank input line; line breaks inside a translation (a vocabulary can hold pieces
    with CR, U+2028 and the like) become spaces, so that line N of the output is line N's translation.
    A line missing or given twice is an error, never a shifted file."""
    by_line = dict(p for p in translated if p[0] >= 0)  # -1: a rank's stand-in line (DataModule.predict_dataloader)
    translated = [p for p in translated if p[0] >= 0]
    by_line.update((i, "") for i in blank)
    if sorted(by_line) != list(range(n)) or len(translated) + len(blank) != n:
        raise TrainingError(f"predict: {len(translated)} translations and {len(blank)} blank lines for {n} input lines")
    return [" ".join(by_line[i].splitlines()) for i in range(n)]
