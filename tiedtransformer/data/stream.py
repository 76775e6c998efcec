"""One rank's batches of one split, as its DataLoader workers make them: pairs read from the corpus, shuffled
(training), stripped, encoded, filtered and cut into token-bucketed batches."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from typing import Literal

import torch
from torch.utils.data import IterableDataset

from tiedtransformer.data.batching import Batch, Example, collate, shuffled, token_buckets
from tiedtransformer.data.corpus import Corpus
from tiedtransformer.data.vocab import Vocabulary
from tiedtransformer.errors import ConfigError

Direction = Literal["en-de", "de-en"]
DIRECTIONS = ("en-de", "de-en")


def languages(direction: str) -> tuple[str, str]:
    if direction not in DIRECTIONS:
        raise ConfigError(f"unknown direction {direction!r} (option data.direction); valid: {', '.join(DIRECTIONS)}")
    src, tgt = direction.split("-")
    return src, tgt


def tokenized(
    pairs: Iterator[tuple[int, dict | None]],
    vocab: Vocabulary,
    src: str,
    tgt: str,
    max_len: int,
    dropped: Counter | None = None,
    chunk: int = 256,
) -> Iterator[Example]:
    """Strip and encode pairs; skip pairs with an empty side (whitespace only, or no tokens), a side longer than
    ``max_len`` tokens (EOS included), or an invalid line, counting each reason in ``dropped``."""
    dropped = Counter() if dropped is None else dropped
    while block := list(islice(pairs, chunk)):
        dropped["invalid_utf8"] += sum(p is None for _, p in block)
        block = [(i, p[src].strip(), p[tgt].strip()) for i, p in block if p is not None]
        kept = [b for b in block if b[1] and b[2]]
        dropped["empty"] += len(block) - len(kept)
        if not kept:
            continue
        src_ids = vocab.encode(src, [b[1] for b in kept])
        tgt_ids = vocab.encode(tgt, [b[2] for b in kept])
        for (i, _, ref), s, t in zip(kept, src_ids, tgt_ids):
            if not s or not t:  # only characters the vocabulary's normalisation removes (e.g. zero-width)
                dropped["empty"] += 1
            elif len(s) < max_len and len(t) < max_len:
                yield Example(i, s, t, ref)
            else:
                dropped["too_long"] += 1


class BatchStream(IterableDataset):
    """One rank's batches of one split; runs inside each DataLoader worker."""

    def __init__(
        self,
        corpus: Corpus,
        vocab: Vocabulary,
        direction: str,
        max_tokens: int,
        max_len: int,
        bucket_buffer: int,
        shuffle_buffer: int,
        train: bool,
        seed: int,
        epoch: int,
        rank: int,
        world_size: int,
        epoch_box: torch.Tensor | None = None,
    ):
        super().__init__()
        self.epoch_box = epoch_box  # shared memory: the epoch, set by the training process before each pass
        self.corpus, self.vocab, self.langs = corpus, vocab, languages(direction)
        self.max_tokens, self.max_len = max_tokens, max_len
        self.bucket_buffer, self.shuffle_buffer = bucket_buffer, shuffle_buffer
        self.train, self.seed, self.epoch, self.rank, self.world_size = train, seed, epoch, rank, world_size

    def __iter__(self) -> Iterator[Batch]:
        if self.epoch_box is not None:  # a persistent worker: the training process says which epoch comes next
            self.epoch = int(self.epoch_box[0])
        info = torch.utils.data.get_worker_info()
        worker = 0 if info is None else info.id
        rng = random.Random(f"{self.seed}/{self.epoch}/{self.rank}/{worker}") if self.train else None
        pairs = self.corpus.pairs(self.rank, self.world_size, self.epoch)
        if rng is not None:
            pairs = shuffled(pairs, self.shuffle_buffer, rng)
        dropped, reported = Counter(), Counter()
        examples = tokenized(pairs, self.vocab, *self.langs, self.max_len, dropped)
        for group in token_buckets(examples, self.max_tokens, self.bucket_buffer, rng):
            batch = collate(group)
            batch.dropped = dict(dropped - reported)  # pairs skipped since the previous batch
            reported = dropped.copy()
            yield batch
