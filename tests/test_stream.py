"""tiedtransformer.data.stream: directions, and what tokenizing keeps and counts."""

from collections import Counter

import pytest

from tiedtransformer.data.stream import languages, tokenized
from tiedtransformer.errors import ConfigError


def test_a_direction_names_source_and_target():
    assert languages("en-de") == ("en", "de") and languages("de-en") == ("de", "en")
    with pytest.raises(ConfigError, match="valid: en-de, de-en"):
        languages("en-fr")


class WordIds:
    """A stand-in vocabulary: one id per word (4 + its length), no specials."""

    def encode(self, lang, texts):
        return [[4 + len(w) for w in t.split()] for t in texts]


def test_tokenized_keeps_whole_pairs_and_counts_each_reason_for_a_skip():
    pairs = enumerate(
        [
            {"en": " a dog ", "de": "ein Hund"},
            {"en": "   ", "de": "leer"},  # an empty side
            None,  # a line skipped as invalid UTF-8
            {"en": "one two three four", "de": "x"},  # 4 tokens: too long for max_len 4 (EOS needs one)
            {"en": "cat", "de": "Katze"},
        ]
    )
    dropped = Counter()
    kept = list(tokenized(pairs, WordIds(), "en", "de", max_len=4, dropped=dropped, chunk=2))
    assert [(e.id, e.ref) for e in kept] == [(0, "ein Hund"), (4, "Katze")]
    assert kept[0].src == [5, 7] and dropped == Counter(empty=1, invalid_utf8=1, too_long=1)
