import pytest
import torch

from tiedtransformer.analysis import intrinsic
from tiedtransformer.analysis.intrinsic import plural_probe, read_plural_pairs, read_word_pairs, spearman


def test_spearman_known_values():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # with ties: ranks x = 1, 2.5, 2.5, 4 ; y = 1, 2, 3, 4 -> Pearson of ranks
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)


def test_plural_probe_finds_a_planted_plural_direction():
    torch.manual_seed(0)
    words = ["dog", "cat", "car", "tree", "house"]
    tokens = ["<pad>", "<unk>", "<s>", "</s>"] + ["▁" + w for w in words] + ["▁" + w + "s" for w in words] + ["▁x"]
    w = torch.randn(len(tokens), 32)
    offset = torch.randn(32) * 3
    for i in range(5):
        w[9 + i] = w[4 + i] + offset + 0.01 * torch.randn(32)
    r = plural_probe(w, tokens, [(x, x + "s") for x in words] + [("mouse", "mice")])
    assert r["pairs"] == 5 and r["analogy_accuracy"] == 1.0 and r["offset_consistency"] > 0.99
    r = plural_probe(torch.randn(len(tokens), 32), tokens, [(x, x + "s") for x in words])
    assert r["offset_consistency"] < 0.9


def test_reading_the_gensim_files(tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("# header\nold\tnew\t1.58\nsmart\tintelligent\t9.2\n")
    assert read_word_pairs(f) == [("old", "new", 1.58), ("smart", "intelligent", 9.2)]
    q = tmp_path / "q.txt"
    q.write_text(": capital\nA B C D\n: gram8-plural\nbanana bananas bird birds\n: gram9\nx y z w\n")
    assert read_plural_pairs(q) == [("banana", "bananas"), ("bird", "birds")]


def test_evaluation_is_skipped_without_gensim(monkeypatch):
    monkeypatch.setattr(intrinsic, "gensim_test_data", lambda: None)
    assert intrinsic.evaluate(object(), ["src"]) is None


def test_gensim_data_is_found_when_installed():
    pytest.importorskip("gensim")
    path = intrinsic.gensim_test_data()
    assert path is not None and len(read_word_pairs(path / "simlex999.txt")) == 999
    assert len(read_word_pairs(path / "wordsim353.tsv")) == 353


class OneTokenPerWord:
    """A stand-in SentencePiece model: word i of a fixed list is token i + 4 (past the special tokens)."""

    def __init__(self, words):
        self.ids = {w: i + 4 for i, w in enumerate(words)}

    def encode(self, word):
        return [self.ids[word]]


def test_a_random_matrix_scores_near_zero_and_each_matrix_draws_its_own_null():
    import random

    from tiedtransformer.analysis.intrinsic import null_seed, random_null

    rng = random.Random(0)
    words = [f"w{i}" for i in range(400)]
    pairs = [(rng.choice(words), rng.choice(words), rng.random()) for _ in range(2000)]
    sp = OneTokenPerWord(words)
    nulls = [random_null((404, 32), sp, {"simlex999": pairs}, seed, draws=4) for seed in range(3)]
    rhos = [n["simlex999"] for n in nulls]
    assert all(abs(r) < 0.1 for r in rhos)  # 2,000 pairs: one draw's sd is about 0.02
    assert all(0 < n["simlex999_sd"] < 0.06 for n in nulls)  # the spread of one draw, measured
    assert len(set(rhos)) == 3  # different seeds, different draws
    again = random_null((404, 32), sp, {"simlex999": pairs}, 2, draws=4)
    assert again == nulls[2]
    assert null_seed(1, "dec_lut") != null_seed(1, "dec_embed") != null_seed(2, "dec_embed")
    assert null_seed(1, "dec_lut") == null_seed(1, "dec_lut")


def test_the_correlation_is_the_spearman_of_each_pairs_cosine_of_mean_piece_rows():
    import random

    import torch

    from tiedtransformer.analysis.intrinsic import similarity_correlation, spearman

    class TwoPiecesForLongWords(OneTokenPerWord):
        def encode(self, word):
            i = self.ids.get(word)
            return [] if i is None else [i, i + 1] if len(word) > 2 else [i]

    rng = random.Random(1)
    words = [f"w{i}" for i in range(60)]
    pairs = [(rng.choice(words), rng.choice(words), rng.random()) for _ in range(200)] + [("w1", "nope", 0.5)]
    sp = TwoPiecesForLongWords(words)
    w = torch.randn(70, 8, generator=torch.Generator().manual_seed(0))
    vec = {x: w[sp.encode(x)].mean(0) for x in words}
    brute = [float(torch.cosine_similarity(vec[a], vec[b], dim=0)) for a, b, _ in pairs[:-1]]
    got = similarity_correlation(w, sp, pairs)
    assert got["covered"] == 200 and got["pairs"] == 201  # the pair with an unknown word is left out
    assert got["spearman"] == pytest.approx(spearman(brute, [s for _, _, s in pairs[:-1]]), abs=1e-9)
