import random

import pytest
import torch

from tiedtransformer.data.batching import (
    Batch,
    Example,
    collate,
    padding_fraction,
    shuffled,
    token_buckets,
)
from tiedtransformer.specials import BOS_ID, EOS_ID, PAD_ID


def examples(n=500, seed=0):
    """Source and target lengths correlated, as in translation."""
    rng = random.Random(seed)
    lengths = [rng.randint(3, 40) for _ in range(n)]
    return [Example(i, [5] * L, [6] * max(1, L + rng.randint(-2, 2)), f"ref {i}") for i, L in enumerate(lengths)]


def test_shuffled_is_a_permutation_that_moves_items():
    out = list(shuffled(range(1000), 100, random.Random(0)))
    assert sorted(out) == list(range(1000)) and out != list(range(1000))
    assert list(shuffled(range(5), 100, random.Random(0))) != []  # buffer larger than the stream


@pytest.mark.parametrize("rng", [None, random.Random(0)])
def test_token_buckets_cover_every_example_once_within_max_tokens(rng):
    ex = examples()
    batches = list(token_buckets(ex, max_tokens=256, buffer_size=128, rng=rng))
    ids = [e.id for b in batches for e in b]
    assert sorted(ids) == list(range(len(ex)))
    for b in batches:
        longest = max(max(len(e.src), len(e.tgt)) + 1 for e in b)
        assert len(b) * longest <= 256


def test_bucketing_keeps_padding_low():
    batches = [collate(b) for b in token_buckets(examples(2000), 1024, 1000, random.Random(0))]
    fraction = sum(padding_fraction(b) * b.src.numel() for b in batches) / sum(b.src.numel() for b in batches)
    unsorted = [collate(examples(2000)[i : i + 16]) for i in range(0, 2000, 16)]
    assert fraction < 0.10 < sum(padding_fraction(b) for b in unsorted) / len(unsorted)


def test_collate_adds_bos_and_eos_and_pads():
    b = collate([Example(7, [10, 11], [20], "x"), Example(8, [12], [21, 22, 23], "y")])
    assert b.src.tolist() == [[10, 11, EOS_ID], [12, EOS_ID, PAD_ID]]
    assert b.tgt_in.tolist() == [[BOS_ID, 20, PAD_ID, PAD_ID], [BOS_ID, 21, 22, 23]]
    assert b.tgt_out.tolist() == [[20, EOS_ID, PAD_ID, PAD_ID], [21, 22, 23, EOS_ID]]
    assert b.ids.tolist() == [7, 8] and b.refs == ["x", "y"] and b.num_tgt_tokens == 6


def test_collate_puts_a_batch_in_one_storage_so_a_worker_sends_it_in_one_piece():
    b = collate([Example(7, [10, 11], [20], "x"), Example(8, [12], [21, 22, 23], "y")])
    storages = {t.untyped_storage().data_ptr() for t in (b.src, b.tgt_in, b.tgt_out, b.ids)}
    assert len(storages) == 1 and all(t.is_contiguous() for t in (b.src, b.tgt_in, b.tgt_out, b.ids))


def test_stand_in_batch_is_a_valid_model_input():
    from tests.conftest import tiny_model

    b = Batch.stand_in()
    assert tiny_model()(b.src, b.tgt_in).shape == (1, 1, 23)
    assert torch.equal(b.tgt_out, b.src)
