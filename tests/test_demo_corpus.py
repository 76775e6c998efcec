from itertools import islice

from tiedtransformer.data.demo_corpus import demo_pairs, is_held_out


def test_deterministic():
    assert list(demo_pairs("train", 50)) == list(demo_pairs("train", 50))
    assert list(demo_pairs("train", 50, seed=1)) != list(demo_pairs("train", 50))


def test_held_out_splits_share_no_sentence_with_training():
    train = {p["en"] for p in demo_pairs("train", 20000)}
    valid = [p["en"] for p in demo_pairs("validation", 300)]
    test = [p["en"] for p in demo_pairs("test", 300)]
    assert len(valid) == len(test) == 300
    assert not train & set(valid) and not train & set(test)
    assert all(is_held_out(s) for s in valid + test)
    assert set(valid) != set(test)


def test_real_inflection_and_word_order():
    pairs = list(islice(demo_pairs("train", 20000), 20000))
    de = " ".join(p["de"] for p in pairs)
    for form in (" Hund", " Hunde", " Hunden", " den ", " dem ", "große", "großen", "großer", ", weil", " nicht."):
        assert form in de, form
    # plural agreement: "The dogs see" <-> "Die Hunde sehen"
    assert any(p["en"].startswith("The dogs see ") and p["de"].startswith("Die Hunde sehen ") for p in pairs)
    # subordinate clauses put the German verb last
    sub = next(p for p in pairs if ", weil" in p["de"] and " sees " in p["en"].split("because")[1])
    assert sub["de"].endswith(" sieht.")
