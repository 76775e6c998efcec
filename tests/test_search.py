import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import tiny_model
from tiedtransformer.model.search import SearchTricks, beam_search, greedy_decode, length_penalty
from tiedtransformer.specials import BOS_ID, EOS_ID, PAD_ID


def sources(B=4, seed=0, V=23):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, V, (B, 9), generator=g)
    src[1, 5:] = PAD_ID  # different lengths in one batch
    src[2, 3:] = PAD_ID
    return src


@pytest.mark.parametrize("norm_first", [False, True])
def test_kv_cache_decoding_equals_full_decoding(norm_first):
    m = tiny_model(norm_first=norm_first)
    src = sources()
    memory, mask = m.encode(src)
    tgt = torch.randint(4, 23, (4, 6))
    full = m.decode(tgt, memory, mask)
    cache = m.new_cache()
    steps = [m.decode(tgt[:, t : t + 1], memory, mask, cache=cache) for t in range(6)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)
    # a multi-token chunk after a cached prefix works too
    cache = m.new_cache()
    first = m.decode(tgt[:, :2], memory, mask, cache=cache)
    rest = m.decode(tgt[:, 2:], memory, mask, cache=cache)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_cached_and_uncached_search_give_identical_output(seed):
    torch.manual_seed(seed)
    m = tiny_model()
    src = sources(seed=seed)
    assert greedy_decode(m, src, max_len_b=12) == greedy_decode(m, src, max_len_b=12, use_cache=False)
    assert beam_search(m, src, 3, max_len_b=12) == beam_search(m, src, 3, max_len_b=12, use_cache=False)


@pytest.mark.parametrize("seed", range(5))
def test_beam_of_one_equals_greedy(seed):
    torch.manual_seed(seed)
    m = tiny_model()
    src = sources(seed=seed)
    assert beam_search(m, src, beam_size=1, max_len_b=15) == greedy_decode(m, src, max_len_b=15)


def test_outputs_respect_the_length_limit_and_hold_no_specials():
    m = tiny_model()
    src = sources()
    for out in (greedy_decode(m, src, 0.0, 4), beam_search(m, src, 2, max_len_a=0.0, max_len_b=4)):
        assert len(out) == 4
        assert all(len(seq) <= 3 for seq in out)  # 4 tokens at most, EOS included
        assert all(EOS_ID not in seq and PAD_ID not in seq for seq in out)


def _sequence_logprob(m, src, seq):
    memory, mask = m.encode(src)
    tgt_in = torch.tensor([[BOS_ID] + seq])
    logp = F.log_softmax(m.logits(m.decode(tgt_in, memory, mask)), -1)[0]
    return sum(float(logp[i, tok].detach()) for i, tok in enumerate(seq + [EOS_ID]))


@pytest.mark.parametrize("seed", range(6))
def test_wide_beam_finds_the_best_sequence_by_brute_force(seed):
    """With a beam wider than the search space, beam search is exhaustive: compare with enumeration."""
    torch.manual_seed(seed)
    m = tiny_model(vocab_size=6)
    src = torch.tensor([[4, 5, 4]])
    L, alpha = 3, 0.6
    best, best_seq = -math.inf, None
    for n in range(L):  # n tokens before EOS, EOS at position n + 1 <= L
        for seq in itertools.product([t for t in range(6) if t != EOS_ID], repeat=n):
            score = _sequence_logprob(m, src, list(seq)) / length_penalty(n + 1, alpha)
            if score > best:
                best, best_seq = score, list(seq)
    found = beam_search(m, src, beam_size=64, alpha=alpha, max_len_a=0.0, max_len_b=L)[0]
    assert found == best_seq


def test_length_penalty_is_gnmt():
    assert length_penalty(1, 0.6) == 1.0
    assert length_penalty(7, 0.6) == pytest.approx(2.0**0.6)


def test_min_len_forbids_ending_early():
    m = tiny_model()
    src = sources()
    for out in (
        greedy_decode(m, src, 0.0, 6, min_len=6),
        beam_search(m, src, 3, max_len_a=0.0, max_len_b=6, min_len=6),
    ):
        assert all(len(seq) == 5 for seq in out)  # 5 tokens, then the forced EOS at the 6th place


@pytest.mark.parametrize("K", [1, 3])
def test_beams_sharing_their_sentence_memory_decode_as_with_a_copy_per_beam(K):
    m = tiny_model()
    src = sources()
    memory, mask = m.encode(src)
    tgt = torch.randint(4, 23, (4 * K, 5))
    copied = m.decode(tgt, memory.repeat_interleave(K, 0), mask.repeat_interleave(K, 0))
    torch.testing.assert_close(m.decode(tgt, memory, mask), copied, rtol=1e-5, atol=1e-5)
    cache = m.new_cache()
    steps = [m.decode(tgt[:, t : t + 1], memory, mask, cache=cache) for t in range(3)]
    # sentences 0 and 2 go on (their beams reordered), as when the others finished
    keep = torch.tensor([0, 2])
    rows = (keep[:, None] * K + torch.arange(K).flip(0)).view(-1)
    m.reorder_cache(cache, keep, "cross")
    m.reorder_cache(cache, rows, "self")
    steps.append(m.decode(tgt[rows, 3:], memory[keep], mask[keep], cache=cache))
    torch.testing.assert_close(torch.cat(steps[:3], dim=1), copied[:, :3], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(steps[3], m.decode(tgt[rows], memory[keep], mask[keep])[:, 3:], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("projection_reg", [0.0, 0.15])
def test_the_cpu_transposed_output_layer_gives_the_same_search(projection_reg, monkeypatch):
    import tiedtransformer.model.search as search

    torch.manual_seed(0)
    m = tiny_model(projection_reg=projection_reg)
    if m.projection is not None:
        torch.nn.init.normal_(m.projection.weight)  # P away from its identity start
    src = sources()
    memory, mask = m.encode(src)
    tokens = torch.randint(4, 23, (4, 3))
    outputs = {}
    for max_rows in (0, 10**6):  # never / always the transposed product
        monkeypatch.setattr(search, "_CPU_TRANSPOSED_MAX_ROWS", max_rows)
        logp = search._step_logprobs(m, tokens, memory, mask, None)
        outputs[max_rows] = (logp, beam_search(m, src, 3, max_len_b=10), greedy_decode(m, src, max_len_b=10))
    plain, transposed = outputs[0], outputs[10**6]
    expected = F.log_softmax(m.logits(m.decode(tokens, memory, mask)[:, -1]), -1)
    torch.testing.assert_close(plain[0], expected)
    torch.testing.assert_close(transposed[0], expected, rtol=1e-5, atol=1e-5)
    assert transposed[1:] == plain[1:]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "off", [{"early_finish": False}, {"shared_memory": False}, {"transposed_output": False}, {}], ids=str
)
def test_each_speed_up_of_the_search_leaves_its_outputs_as_they_are(seed, off):
    torch.manual_seed(seed)
    m = tiny_model()
    src = sources(B=6, seed=seed)
    for use_cache in (True, False):
        everything = beam_search(m, src, 3, max_len_b=14, use_cache=use_cache)
        assert beam_search(m, src, 3, max_len_b=14, use_cache=use_cache, tricks=SearchTricks(**off)) == everything
