import pytest

from tiedtransformer.analysis.pair_kinds import KINDS, kind_shares, pair_kind, random_pair_kinds


@pytest.mark.parametrize(
    "a, b, kind",
    [
        ("▁playing", "▁plays", "inflection"),
        ("▁Hund", "▁Hunde", "inflection"),
        ("▁großen", "▁großer", "inflection"),
        ("▁walked", "▁walk", "inflection"),
        ("▁Der", "▁der", "case"),
        ("▁Gehweg", "▁Bürgersteig", "other"),
        ("▁läuft", "▁rennt", "other"),
        # a shared 4-letter start is not a shared stem when the words go on differently
        ("▁Strand", "▁Straße", "other"),
        ("▁international", "▁internet", "other"),
        ("▁spielt", "▁spielen", "inflection"),
        # too short a stem to tell
        ("▁an", "▁am", "other"),
        ("auer", "▁G", "pieces"),
        ("▁house", "s", "pieces"),
        ("▁", "▁a", "pieces"),
    ],
)
def test_pair_kind(a, b, kind):
    assert pair_kind(a, b) == kind
    assert pair_kind(b, a) == kind


def test_kind_shares_cover_the_first_n_pairs_and_sum_to_one():
    pairs = [("▁Der", "▁der", 0.9), ("auer", "▁G", 0.8), ("▁plays", "▁playing", 0.7), ("▁a", "▁b", 0.6)]
    shares = kind_shares(pairs, n=3)
    assert set(shares) == set(KINDS)
    assert shares == {"pieces": 1 / 3, "case": 1 / 3, "inflection": 1 / 3, "other": 0.0}
    assert kind_shares([]) == {}


def test_a_common_prefix_that_takes_part_of_the_ending_still_finds_the_stem():
    assert pair_kind("▁played", "▁player") == "inflection"  # prefix "playe", stem "play"
    assert pair_kind("▁Kinder", "▁Kindern") == "inflection"


def test_random_pair_kinds_are_the_kinds_of_all_pairs():
    # 30 word starts and 10 pieces: a pair holds a piece with probability 1 - (30*29)/(40*39)
    tokens = [f"▁w{chr(97 + i % 26)}{i}" for i in range(30)] + [f"p{i}" for i in range(10)]
    shares = random_pair_kinds(tokens)
    assert set(shares) == set(KINDS) and sum(shares.values()) == pytest.approx(1.0)
    assert shares["pieces"] == pytest.approx(1 - 30 * 29 / (40 * 39), abs=0.015)
    assert random_pair_kinds(tokens) == shares  # a fixed sample: the same null every time
    assert random_pair_kinds(["▁a"]) == {}


def test_the_top_pairs_of_planted_inflections_beat_the_random_pair_kinds():
    stems = ["▁spiel", "▁hund", "▁lauf", "▁kind", "▁haus", "▁baum", "▁stadt", "▁frau"]
    tokens = [s + e for s in stems for e in ("", "en", "es")] + [f"▁x{i}q" for i in range(40)]
    top = [(s + "en", s + "es", 0.9) for s in stems]  # a matrix that learned inflections
    assert kind_shares(top)["inflection"] == 1.0
    assert random_pair_kinds(tokens)["inflection"] < 0.05
