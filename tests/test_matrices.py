import json
import math

import pytest
import torch

from tests.conftest import tiny_model, vocabulary_of
from tiedtransformer.analysis.dumps import EmbeddingDump, dump_from_model
from tiedtransformer.analysis.matrices import (
    AnalysisOptions,
    analyze_dump,
    jaccard_tables,
    kept_rows,
    snapshot_overlap,
    summarize,
)
from tiedtransformer.analysis.schema import statistics
from tiedtransformer.analysis.similarity import random_like
from tiedtransformer.specials import NUM_SPECIALS

TOKENS = [f"t{i}" for i in range(23)]


@pytest.mark.parametrize("tying", ["none", "decoder", "src_tgt", "three_way"])
def test_tied_matrices_are_reported_identical_and_computed_once(tying):
    dump = dump_from_model(tiny_model(tying=tying), vocabulary_of(TOKENS, TOKENS), {"tying": tying})
    computed = []
    results = analyze_dump(dump, AnalysisOptions(top_k=10, knn_k=3), progress=computed.append)
    distinct = {"none": 4, "decoder": 3, "src_tgt": 3, "three_way": 2}[tying]
    assert len(computed) == distinct
    top_j, knn_j = jaccard_tables(results)
    names = list(results)
    for a in names:
        assert top_j[a][a] == 1.0 and knn_j[a][a] == 1.0
        for b in names:
            assert top_j[a][b] == top_j[b][a] and knn_j[a][b] == knn_j[b][a]
            if b in dump.tied_with[a]:
                assert top_j[a][b] == 1.0 and knn_j[a][b] == 1.0
    if tying == "three_way":
        assert results["dec_lut"].identical_to == "enc_embed" and results["enc_lut"].identical_to is None


def test_special_and_rare_tokens_are_left_out():
    w = torch.randn(23, 16)
    counts = [100] * 23
    counts[10] = counts[11] = 1
    dump = EmbeddingDump({"dec_lut": w}, TOKENS, TOKENS, counts={"src": counts, "tgt": counts})
    assert kept_rows(dump, "dec_lut", 0).tolist() == list(range(NUM_SPECIALS, 23))
    assert 10 not in kept_rows(dump, "dec_lut", 5).tolist()
    r = analyze_dump(dump, AnalysisOptions(top_k=400, knn_k=3, min_count=5))["dec_lut"]
    seen = {t for a, b, _ in r.pair_texts() for t in (a, b)}
    assert seen == {f"t{i}" for i in range(NUM_SPECIALS, 23) if i not in (10, 11)}
    assert r.sim.n_pairs == 17 * 16 // 2


def test_summary_has_the_seed_experiments_figures():
    dump = dump_from_model(tiny_model(tying="decoder"), vocabulary_of(TOKENS, TOKENS), {"tying": "decoder"})
    report = summarize(analyze_dump(dump, AnalysisOptions(top_k=15, knn_k=3, bins=10)), 15, 10, 3)
    m = report.matrices["enc_embed"]
    assert len(m.top_pairs) == 15 and all(len(p) == 3 for p in m.top_pairs)
    assert m.stat("mean_top") == pytest.approx(sum(p[2] for p in m.top_pairs) / 15)
    assert m.stat("mean_bottom") < m.stat("mean_all") < m.stat("mean_top")
    assert sum(m.histogram["counts"]) == m.n_pairs == 19 * 18 // 2
    assert report.matrices["dec_lut"].identical_to == "dec_embed"
    assert not math.isnan(report.jaccard_knn["enc_embed"]["dec_lut"])


def test_snapshot_overlap_is_one_for_the_same_model_and_lower_after_change():
    net = tiny_model()
    a = analyze_dump(dump_from_model(net, vocabulary_of(TOKENS, TOKENS), {}), AnalysisOptions(top_k=20, knn_k=3))
    assert all(v == {"top_pairs": 1.0, "knn": 1.0} for v in snapshot_overlap(a, a).values())
    with torch.no_grad():
        net.dec_lut.weight.add_(torch.randn_like(net.dec_lut.weight))
    b = analyze_dump(dump_from_model(net, vocabulary_of(TOKENS, TOKENS), {}), AnalysisOptions(top_k=20, knn_k=3))
    overlap = snapshot_overlap(a, b)
    assert overlap["dec_lut"]["top_pairs"] < 1.0 and overlap["enc_embed"]["top_pairs"] == 1.0


def test_nulls_at_init_and_random_and_the_rare_token_report():
    torch.manual_seed(0)
    n = 80
    tokens = [f"t{i}" for i in range(n)]
    counts = [0] * NUM_SPECIALS + [1000 if i % 2 else 3 for i in range(NUM_SPECIALS, n)]
    init = torch.randn(n, 16)
    learned = init.clone()
    rare = torch.tensor([i for i in range(NUM_SPECIALS, n) if counts[i] < 10])
    learned[rare] = torch.randn(16) + 0.05 * torch.randn(len(rare), 16)  # rare rows collapse together
    freq = [i for i in range(NUM_SPECIALS, n) if counts[i] >= 10]
    learned[freq[1::2]] = learned[freq[0::2]] + 0.1 * torch.randn(len(freq) // 2, 16)  # learned pairs
    c = {"src": counts, "tgt": counts}
    dump = EmbeddingDump({"dec_lut": learned}, tokens, tokens, counts=c)
    start = EmbeddingDump({"dec_lut": init}, tokens, tokens, counts=c)
    r = analyze_dump(dump, AnalysisOptions(top_k=15, knn_k=3, min_count=10), init=start)["dec_lut"]
    assert {t for a, b, _ in r.pair_texts() for t in (a, b)} <= {tokens[i] for i in freq}  # rare rows left out
    assert r.nulls["init"]["mean_top"] < r.sim.top_scores.mean() - 0.2
    assert r.nulls["random"]["mean_top"] < r.sim.top_scores.mean() - 0.2
    assert r.nulls["init"]["mean_top"] == pytest.approx(r.nulls["random"]["mean_top"], abs=0.15)
    assert r.rare["tokens_left_out"] == len(rare) and r.rare["share_of_top_pairs_with_rare"] > 0.8
    rare_band, *others = r.rare["bands"]
    assert rare_band["left_out"] and rare_band["tokens"] == len(rare) and rare_band["mean_nn"] > 0.9
    assert sum(b["tokens"] for b in others) == len(freq)
    # without a step-0 snapshot the init null says why; without counts there is no rare report
    bare = analyze_dump(EmbeddingDump({"dec_lut": learned}, tokens, tokens), AnalysisOptions(top_k=15, knn_k=3))
    assert "skipped" in bare["dec_lut"].nulls["init"] and bare["dec_lut"].rare is None
    report = summarize({"dec_lut": r}, 15, 200, 3)
    assert report.chance_jaccard_top_pairs["dec_lut"]["dec_lut"] < 0.02
    assert report.matrices["dec_lut"].nulls["init"]["jaccard_top_pairs_with_learned"] < 0.5
    # the kinds of the top pairs beside the same for both nulls (token text decides the kind)
    m = report.matrices["dec_lut"]
    for kinds in (m.kinds, m.nulls["init"]["kinds"], m.nulls["random"]["kinds"]):
        assert sum(kinds.values()) == pytest.approx(1.0)
    assert m.nulls["random"]["kinds"]["pieces"] == pytest.approx(1.0)  # t1, t2, ...: no word start


def test_the_random_null_is_computed_once_per_shape_and_kept(monkeypatch):
    import tiedtransformer.analysis.matrices as matrices

    o = AnalysisOptions(top_k=20, knn_k=3)
    w = torch.randn(60, 8)
    fresh = statistics(matrices._similarity(random_like(w, o.null_seed), o))
    assert matrices.random_null(w, o) == pytest.approx(fresh)
    files = list(matrices.null_cache_dir().glob("60x8-*.json"))
    assert len(files) == 1
    # another matrix of the shape (other rows, other norms) gets the same null, from the cache
    with monkeypatch.context() as m:
        m.setattr(matrices, "_similarity", lambda *a: pytest.fail("computed again"))
        assert matrices.random_null(5 * torch.randn(60, 8), o) == pytest.approx(fresh)
    # other options or another shape are other keys
    matrices.random_null(w, AnalysisOptions(top_k=10, knn_k=3))
    matrices.random_null(torch.randn(61, 8), o)
    assert len(list(matrices.null_cache_dir().glob("*.json"))) == 3
    # a damaged cache file is computed again and replaced; an unwritable cache only costs time
    files[0].write_text('{"mean_top": "rm -rf"}')
    assert matrices.random_null(w, o) == pytest.approx(fresh)
    assert json.loads(files[0].read_text()) == pytest.approx(fresh)
    monkeypatch.setenv("TIEDTRANSFORMER_CACHE", "/proc/no-such-dir")
    assert matrices.random_null(w, o) == pytest.approx(fresh)


@pytest.mark.parametrize("option, value", [("bins", 0), ("top_k", -1), ("knn_k", -2), ("min_count", -1)])
def test_impossible_analysis_options_are_refused_by_name(option, value):
    from tiedtransformer.errors import ConfigError

    with pytest.raises(ConfigError, match=f"--analysis.{option}={value}"):
        AnalysisOptions(**{option: value})
