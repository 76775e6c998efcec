import collections

import pytest

from tests.data_helpers import demo_texts
from tiedtransformer.data.vocab import build_vocabulary, reservoir_sample
from tiedtransformer.errors import ConfigError
from tiedtransformer.specials import BOS_ID, EOS_ID, PAD_ID, UNK_ID


def test_reservoir_sample_is_bounded_and_uniform():
    assert sorted(reservoir_sample(range(5), 10, seed=0)) == list(range(5))
    assert len(reservoir_sample(range(1000), 10, seed=0)) == 10
    assert max(reservoir_sample(range(1000), 10, seed=0, max_scan=50)) < 50
    counts = collections.Counter(x for s in range(2000) for x in reservoir_sample(range(20), 5, seed=s))
    assert min(counts.values()) > 0.7 * 500 and max(counts.values()) < 1.3 * 500  # each item ~ 2000*5/20


def build(tmp_path, joint=True, size=120, pairs=None, **kw):
    pairs = pairs if pairs is not None else demo_texts(400)
    return build_vocabulary(lambda: iter(pairs), ("en", "de"), size, joint, tmp_path / "cache", {"test": 1}, **kw)


def test_joint_vocabulary_round_trips_and_has_the_special_ids(tmp_path):
    v = build(tmp_path)
    assert v.joint and v.size("en") == v.size("de") == 120
    pieces = v.pieces("en")
    assert [pieces[i] for i in (PAD_ID, UNK_ID, BOS_ID, EOS_ID)] == ["<pad>", "<unk>", "<s>", "</s>"]
    text = "The dogs see the big cat."
    assert v.decode("en", v.encode("en", [text])) == [text]
    assert v.decode("de", v.encode("de", ["Die Hunde sehen die große Katze."])) == ["Die Hunde sehen die große Katze."]


def test_separate_vocabularies_one_per_language(tmp_path):
    v = build(tmp_path, joint=False, size=100)
    assert not v.joint and v.model_files["en"] != v.model_files["de"]
    assert "▁nicht" in v.pieces("de") and "▁nicht" not in v.pieces("en")
    assert "▁because" in v.pieces("en") and "▁because" not in v.pieces("de")


def test_second_build_reuses_the_cache_without_reading_the_corpus(tmp_path):
    first = build(tmp_path)

    def exploding():
        raise AssertionError("the corpus was read again")

    again = build_vocabulary(exploding, ("en", "de"), 120, True, tmp_path / "cache", {"test": 1})
    assert again.model_files == first.model_files
    other = build(tmp_path, size=110)  # another input, another key
    assert other.model_files != first.model_files


def test_vocabulary_too_large_for_the_corpus_says_what_to_lower(tmp_path):
    with pytest.raises(ConfigError, match="Lower data.vocab_size"):
        build(tmp_path, size=5000, pairs=demo_texts(20))


def test_empty_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        build(tmp_path, pairs=[])


def test_vocabulary_pickles_for_dataloader_workers(tmp_path):
    import pickle

    v = build(tmp_path)
    v.encode("en", ["hello"])
    w = pickle.loads(pickle.dumps(v))
    assert w.encode("en", ["The dog."]) == v.encode("en", ["The dog."])
