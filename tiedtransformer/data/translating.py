"""What translating needs from the data, as typed values the datamodule hands over: :class:`TextIO` (text to
batches and ids to text, the evaluation sets) for the module's evaluation and ``predict``, and
:class:`PredictInput` (the lines of a ``predict`` file) for the prediction writer."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset

from tiedtransformer.data.batching import Batch
from tiedtransformer.data.corpus import read_lines


@dataclass(frozen=True)
class TextIO:
    """Given to the module once, at setup: how it turns source text into batches, target ids into text, and which
    sentences it scores.

    Attributes:
        seed: The data's seed (the validation sample is drawn with it).
        eval_pairs: ``eval_pairs(split)``: every (source, reference) pair of ``valid`` or ``test``, in file order.
        source_batches: ``source_batches(texts, truncated)``: token-bucketed batches whose ``ids`` are positions in
            ``texts`` (the position of a sentence cut to ``max_len`` goes to ``truncated`` when given).
        decode: Target ids to detokenized text.
    """

    seed: int
    eval_pairs: Callable[[str], list[tuple[str, str]]]
    source_batches: Callable[..., list[Batch]]
    decode: Callable[[list[list[int]]], list[str]]


@dataclass
class PredictInput(Dataset):
    """One rank's batches of a ``predict`` file (``ids``: line positions in the whole file), and what the writer
    needs to put out one line per input line: the number of lines, which get an empty translation without the
    model (blank lines, lines skipped as invalid UTF-8), which were cut to ``max_len`` (line numbers, this rank's),
    and where the translations go by default (``<path>.<target language>``)."""

    path: str
    target_lang: str
    batches: list[Batch] = field(default_factory=list)
    lines: int = 0
    blank: list[int] = field(default_factory=list)
    truncated: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Batch:
        return self.batches[i]

    @property
    def default_output(self) -> str:
        return f"{self.path}.{self.target_lang}"


def read_predict_input(
    path: str,
    target_lang: str,
    source_batches: Callable[..., list[Batch]],
    rank: int,
    world_size: int,
    skip_invalid_utf8: bool,
    max_len: int,
) -> PredictInput:
    """This rank's share of the lines of ``path`` that have text, as batches; every rank knows all lines and which
    are blank, so that the writer can put out one line per input line. A rank with no line gets one stand-in
    batch (id -1, left out by the writer) where others have lines: every rank must join the writer's gather."""
    lines = read_lines(path, skip_invalid_utf8)
    blank = [i for i, line in enumerate(lines) if line is None or not line.strip()]
    skip = set(blank)
    mine = [i for i in range(len(lines)) if i not in skip][rank::world_size]
    truncated: list[int] = []
    batches = source_batches([lines[i] for i in mine], truncated)
    for b in batches:  # positions in the whole file, so that the writer puts the lines in order
        b.ids = torch.tensor([mine[i] for i in b.ids.tolist()], dtype=torch.long)
    if not batches and world_size > 1 and len(skip) < len(lines):
        batches = source_batches([next(x for x in lines if x and x.strip())])
        batches[0].ids = torch.tensor([-1])
    out = PredictInput(path, target_lang, batches, len(lines), blank, [mine[i] + 1 for i in truncated])
    _warn(out, lines.count(None), rank, world_size, max_len)
    return out


def _warn(inp: PredictInput, invalid: int, rank: int, world_size: int, max_len: int) -> None:
    if cut := inp.truncated:
        shown = ", ".join(map(str, cut[:10])) + (", ..." if len(cut) > 10 else "")
        where = " on this rank" if world_size > 1 else ""
        print(
            f"warning: {inp.path}: {len(cut)} of {inp.lines} lines{where} have more than data.max_len="
            f"{max_len} tokens (lines {shown}); each is translated from its first {max_len - 1} tokens",
            file=sys.stderr,
            flush=True,
        )
    if invalid and rank == 0:
        print(
            f"warning: {inp.path}: {invalid} lines are not valid UTF-8 (data.skip_invalid_utf8=true): their "
            "translations are empty lines",
            file=sys.stderr,
            flush=True,
        )
