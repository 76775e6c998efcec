import random

import pytest
import torch

from tiedtransformer.analysis.cross import cross_compare, cross_to_dir
from tiedtransformer.analysis.dumps import EmbeddingDump
from tiedtransformer.analysis.matrices import AnalysisOptions
from tiedtransformer.analysis.similarity import normalize_rows
from tiedtransformer.specials import NUM_SPECIALS

N, D = 60, 12


def _brute_top_pairs(w: torch.Tensor, tokens: list[str], k: int) -> set:
    x = normalize_rows(w)
    sim = x @ x.T
    pairs = sorted(
        ((float(sim[i, j]), i, j) for i in range(len(tokens)) for j in range(i + 1, len(tokens))), reverse=True
    )
    return {tuple(sorted((tokens[i], tokens[j]))) for _, i, j in pairs[:k]}


def _brute_knn(w: torch.Tensor, tokens: list[str], k: int) -> dict:
    x = normalize_rows(w)
    sim = (x @ x.T).fill_diagonal_(float("-inf"))
    return {tokens[i]: {tokens[j] for j in sim[i].topk(k).indices.tolist()} for i in range(len(tokens))}


def test_matches_brute_force_with_a_shuffled_vocabulary(tmp_path):
    torch.manual_seed(0)
    specials = [f"<s{i}>" for i in range(NUM_SPECIALS)]
    words = [f"w{i}" for i in range(N)]
    wa = {t: torch.randn(D) for t in words}
    wb = {t: wa[t] + 0.7 * torch.randn(D) for t in words}  # B: A's geometry plus noise
    shuffled = words[:]
    random.Random(1).shuffle(shuffled)
    a_tokens, b_tokens = specials + words, specials + shuffled + ["only_in_b"]
    a = EmbeddingDump(
        {"dec_lut": torch.stack([torch.zeros(D)] * NUM_SPECIALS + [wa[t] for t in words])}, a_tokens, a_tokens
    )
    b_mat = torch.stack([torch.zeros(D)] * NUM_SPECIALS + [wb[t] for t in shuffled] + [torch.randn(D)])
    b = EmbeddingDump({"dec_lut": b_mat, "dec_embed": torch.randn(len(b_tokens), D)}, b_tokens, b_tokens)
    o = AnalysisOptions(top_k=40, knn_k=5, min_count=0)
    out = cross_compare(a, b, o, pairs=20_000)

    ja, jb = (
        _brute_top_pairs(torch.stack([wa[t] for t in words]), words, 40),
        _brute_top_pairs(torch.stack([wb[t] for t in words]), words, 40),
    )
    assert out["jaccard_top_pairs"]["dec_lut"]["dec_lut"] == pytest.approx(len(ja & jb) / len(ja | jb))
    ka, kb = (
        _brute_knn(torch.stack([wa[t] for t in words]), words, 5),
        _brute_knn(torch.stack([wb[t] for t in words]), words, 5),
    )
    brute_knn = sum(len(ka[t] & kb[t]) / len(ka[t] | kb[t]) for t in words) / N
    assert out["jaccard_knn"]["dec_lut"]["dec_lut"] == pytest.approx(brute_knn)
    assert out["tokens"]["dec_lut"]["dec_lut"] == N  # "only_in_b" and the specials are not compared
    # related geometry correlates far above chance, an unrelated matrix does not
    assert out["spearman"]["dec_lut"]["dec_lut"] > 0.5
    assert abs(out["spearman"]["dec_lut"]["dec_embed"]) < 0.1
    assert out["jaccard_top_pairs"]["dec_lut"]["dec_embed"] < 0.1
    assert out["chance"]["dec_lut"]["dec_lut"]["jaccard_knn"] == pytest.approx(5 / (N - 1) * 5 / (2 * 5 - 25 / (N - 1)))

    report = cross_to_dir(a, b, ("A", "B"), tmp_path / "x", o, 20_000)
    assert (tmp_path / "x" / "cross.md").is_file() and (tmp_path / "x" / "cross.json").is_file()
    assert all((tmp_path / "x" / f).is_file() for f in report["figures"].values())
    assert "| `dec_lut` |" in (tmp_path / "x" / "cross.md").read_text()


def test_identical_runs_agree_completely():
    torch.manual_seed(1)
    tokens = [f"t{i}" for i in range(40)]
    w = torch.randn(40, 8)
    d = EmbeddingDump({"enc_embed": w, "dec_lut": torch.randn(40, 8)}, tokens, tokens)
    out = cross_compare(d, d, AnalysisOptions(top_k=30, knn_k=4, min_count=0), pairs=5000)
    for m in ("jaccard_top_pairs", "jaccard_knn", "spearman"):
        assert out[m]["enc_embed"]["enc_embed"] == pytest.approx(1.0)
        assert out[m]["enc_embed"]["dec_lut"] < 0.5
