"""What a top pair of tokens is, read from the pieces' text alone (no dictionary; inflection is
read from English and German endings). SentencePiece marks a word's first piece with ``▁``.

- ``pieces``: at least one token is a word-internal piece (no ``▁``), or a bare ``▁``;
- ``case``: the same word in other capitalisation (``▁Der`` / ``▁der``);
- ``inflection``: two words on one stem of at least 3 characters, each ending in nothing or an
  English or German inflectional ending (``▁playing`` / ``▁plays``, ``▁Hund`` / ``▁Hunde``,
  ``▁großen`` / ``▁großer``; not ``▁Strand`` / ``▁Straße``);
- ``other``: the rest (near-synonyms such as ``▁Gehweg`` / ``▁Bürgersteig``, related words, noise).
"""

from __future__ import annotations

import random

KINDS = ("pieces", "case", "inflection", "other")
WORD_START = "▁"
ENDINGS = frozenset(
    ["", "s", "es", "d", "ed", "ing", "er", "est", "ly", "n"]  # English
    + ["e", "en", "em", "es", "ern", "ung", "st", "t", "te", "ten", "et", "n", "r", "ste"]  # German
)
MIN_STEM = 3


def pair_kind(a: str, b: str) -> str:
    if not (a.startswith(WORD_START) and b.startswith(WORD_START)) or len(a) == 1 or len(b) == 1:
        return "pieces"
    x, y = a[1:], b[1:]
    if x.lower() == y.lower():
        return "case" if x != y else "other"
    x, y = x.lower(), y.lower()
    stem = 0
    for p, q in zip(x, y):
        if p != q:
            break
        stem += 1
    # the common prefix may hold part of an ending (▁played / ▁player: "playe"; the stem is "play")
    for cut in range(stem, MIN_STEM - 1, -1):
        if x[cut:] in ENDINGS and y[cut:] in ENDINGS:
            return "inflection"
    return "other"


def kind_shares(pairs: list, n: int = 100) -> dict[str, float]:
    """Share of each kind among the first ``n`` pairs ``(a, b, cosine)``; empty when there are none."""
    ks = [pair_kind(a, b) for a, b, *_ in pairs[:n]]
    return {k: ks.count(k) / len(ks) for k in KINDS} if ks else {}


def random_pair_kinds(tokens: list[str], samples: int = 20_000, seed: int = 0) -> dict[str, float]:
    """Share of each kind among all pairs of ``tokens``, estimated from ``samples`` pairs drawn uniformly:
    the null of :func:`kind_shares`. The rows of a random matrix are exchangeable, so its top pairs are a
    uniformly drawn set of pairs, whose kinds are in expectation those of all pairs (standard error of a
    share at the default: at most 0.0035)."""
    if len(tokens) < 2:
        return {}
    rng = random.Random(seed)
    draws = [pair_kind(*(tokens[i] for i in rng.sample(range(len(tokens)), 2))) for _ in range(samples)]
    return {k: draws.count(k) / len(draws) for k in KINDS}
