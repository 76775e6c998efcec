"""From a stream of sentence pairs to padded, token-bucketed batches. Pure functions over iterators."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch

from tiedtransformer.specials import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Example:
    id: int  # position of the pair in its split (-1 where the source cannot tell)
    src: list[int]  # source ids (EOS appended by collate)
    tgt: list[int]  # target ids
    ref: str  # target text, the BLEU reference


@dataclass
class Batch:
    src: torch.Tensor  # (B, S) source ids + EOS, right-padded
    tgt_in: torch.Tensor  # (B, T) BOS + target ids
    tgt_out: torch.Tensor  # (B, T) target ids + EOS
    ids: torch.Tensor  # (B,) pair ids
    refs: list[str] = field(default_factory=list)
    num_tgt_tokens: int = 0  # target tokens with EOS, counted at collate time (no device sync later)
    num_src_tokens: int = 0  # source tokens with EOS, likewise
    padding: bool = False  # a stand-in batch while other ranks still have data (see loader.TrainBatches)
    dropped: dict[str, int] = field(default_factory=dict)  # pairs the reader skipped before this batch, by reason

    def __len__(self) -> int:
        return self.src.size(0)

    @classmethod
    def stand_in(cls) -> Batch:
        one = torch.tensor([[EOS_ID]])
        return cls(
            src=one,
            tgt_in=torch.tensor([[BOS_ID]]),
            tgt_out=one,
            ids=torch.tensor([-1]),
            num_tgt_tokens=1,
            padding=True,
        )


def shuffled(items: Iterable, buffer_size: int, rng: random.Random) -> Iterator:
    """Shuffle a stream with a bounded buffer: each item leaves at a random time among the next
    ``buffer_size``."""
    buf: list = []
    for item in items:
        if len(buf) < buffer_size:
            buf.append(item)
            continue
        j = rng.randrange(buffer_size)
        yield buf[j]
        buf[j] = item
    rng.shuffle(buf)
    yield from buf


def batch_cost(n_sentences: int, longest: int) -> int:
    """Tokens a padded batch occupies: its sentence count times its longest side (EOS/BOS included)."""
    return n_sentences * longest


def token_buckets(
    examples: Iterable[Example], max_tokens: int, buffer_size: int, rng: random.Random | None
) -> Iterator[list[Example]]:
    """Group examples of similar length into batches of at most ``max_tokens`` padded tokens.

    Reads ``buffer_size`` examples at a time, sorts them by length, cuts batches, and yields them in
    random order (``rng``) or in order of length (``rng`` None).
    """

    def flush(buf: list[Example]) -> list[list[Example]]:
        # by the longer side, then the total: both sides of a batch end up of similar length
        buf.sort(key=lambda e: (max(len(e.src), len(e.tgt)), len(e.src) + len(e.tgt)))
        batches, cur, longest = [], [], 0
        for e in buf:
            size = max(len(e.src), len(e.tgt)) + 1
            if cur and batch_cost(len(cur) + 1, max(longest, size)) > max_tokens:
                batches.append(cur)
                cur, longest = [], 0
            cur.append(e)
            longest = max(longest, size)
        if cur:
            batches.append(cur)
        if rng is not None:
            rng.shuffle(batches)
        return batches

    buf: list[Example] = []
    for e in examples:
        buf.append(e)
        if len(buf) >= buffer_size:
            yield from flush(buf)
            buf = []
    yield from flush(buf)


def _padded(rows: list[list[int]], out: list[int]) -> int:
    """Append ``rows`` right-padded to one width to ``out``; return the width."""
    width = max(map(len, rows))
    for r in rows:
        out += r
        out += [PAD_ID] * (width - len(r))
    return width


def collate(examples: list[Example]) -> Batch:
    # The four tensors are views of one tensor, made from one Python list: a DataLoader worker then
    # hands a batch over in one shared-memory segment instead of four, and no tensor is made per row
    # (both raise the pipeline's pairs/s; benchmarks/data.py)
    flat: list[int] = []
    n = len(examples)
    parts = [
        [e.src + [EOS_ID] for e in examples],
        [[BOS_ID] + e.tgt for e in examples],
        [e.tgt + [EOS_ID] for e in examples],
    ]
    widths = [_padded(rows, flat) for rows in parts]
    flat += [e.id for e in examples]
    tensors, at = [], 0
    whole = torch.tensor(flat, dtype=torch.long)
    for w in [*widths, None]:
        size = n * (w or 1)
        tensors.append(whole[at : at + size].view(n, w) if w else whole[at : at + size])
        at += size
    src, tgt_in, tgt_out, ids = tensors
    return Batch(
        src=src,
        tgt_in=tgt_in,
        tgt_out=tgt_out,
        ids=ids,
        refs=[e.ref for e in examples],
        num_tgt_tokens=sum(len(e.tgt) + 1 for e in examples),
        num_src_tokens=sum(len(e.src) + 1 for e in examples),
    )


def padding_fraction(batch: Batch) -> float:
    """Share of padding among the source and target slots of a batch."""
    slots = batch.src.numel() + batch.tgt_out.numel()
    real = int((batch.src != PAD_ID).sum()) + int((batch.tgt_out != PAD_ID).sum())
    return 1.0 - real / slots
