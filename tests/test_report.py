import dataclasses
import json

import pytest
import torch

from tests.conftest import tiny_config
from tests.data_helpers import demo_texts
from tiedtransformer.analysis.dumps import dump_from_model
from tiedtransformer.analysis.matrices import AnalysisOptions
from tiedtransformer.analysis.report import analyze_to_dir, knn_cells, markdown, scalars, tables
from tiedtransformer.data.vocab import build_vocabulary
from tiedtransformer.model.network import TiedTransformer


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    pairs = demo_texts(2000)
    vocab = build_vocabulary(lambda: iter(pairs), ("en", "de"), 300, True, tmp_path_factory.mktemp("v"), {"t": 1})
    net = TiedTransformer(tiny_config(vocab_size=300, tying="decoder")).eval()
    return dump_from_model(net, vocab.state("en", "de"), {"tying": "decoder", "direction": "en-de", "step": 7})


def test_analyze_writes_json_markdown_knn_and_figures(dump, tmp_path):
    report, _ = analyze_to_dir(dump, tmp_path, AnalysisOptions(top_k=50, knn_k=5, bins=40))
    data = json.loads((tmp_path / "similarity.json").read_text())
    for name in ("enc_embed", "enc_lut", "dec_embed", "dec_lut"):
        m = data["matrices"][name]
        assert len(m["top_pairs"]) == 50 and isinstance(m["top_pairs"][0][0], str)
        assert m["top_pairs"][0][2] >= m["top_pairs"][-1][2] and m["mean_top"] > m["mean_bottom"]
    assert data["matrices"]["dec_lut"]["identical_to"] == "dec_embed"
    assert data["jaccard_top_pairs"]["dec_embed"]["dec_lut"] == 1.0
    assert set(data["jaccard_knn"]) == {"enc_embed", "enc_lut", "dec_embed", "dec_lut"}
    for png in ("jaccard_top_pairs.png", "jaccard_knn.png", "similarity_vs_rank.png", "histogram.png"):
        assert (tmp_path / png).stat().st_size > 5000, png
    md = (tmp_path / "report.md").read_text()
    assert "identical to `dec_embed`" in md and "| `enc_embed` |" in md and "![similarity_vs_rank]" in md
    kept = data["matrices"]["enc_embed"]["n_tokens"]  # the default leaves out tokens seen < 10 times
    assert len((tmp_path / "knn" / "enc_embed.tsv").read_text().splitlines()) == kept
    assert kept + data["matrices"]["enc_embed"]["rare"]["tokens_left_out"] == 300 - 4
    assert "## Rare tokens" in md and " / " in md  # statistics beside their nulls
    assert not (tmp_path / "knn" / "dec_lut.tsv").exists()  # identical to dec_embed: written once


def test_one_matrix_gets_curves_and_its_k_nn_file_but_no_jaccard_heatmap(dump, tmp_path):
    one = dataclasses.replace(dump, matrices={"dec_lut": dump.matrices["dec_lut"]})
    report, _ = analyze_to_dir(one, tmp_path, AnalysisOptions(top_k=20, knn_k=3, bins=40, nulls=False))
    assert set(report.figures) == {"similarity_vs_rank", "histogram"}
    assert not list(tmp_path.glob("jaccard_*.png")) and (tmp_path / "histogram.png").stat().st_size > 5000
    rows = (tmp_path / "knn" / "dec_lut.tsv").read_text().splitlines()
    assert len(rows) == report.matrices["dec_lut"].n_tokens
    assert all(len(row.split("\t")) == 4 and all(len(c.split(" ")) == 2 for c in row.split("\t")[1:]) for row in rows)


def test_intrinsic_section_is_filled_with_gensim_and_skipped_without(dump, tmp_path, monkeypatch):
    pytest.importorskip("gensim")
    report, _ = analyze_to_dir(dump, tmp_path / "a", AnalysisOptions(top_k=10, knn_k=3, bins=10))
    simlex = report.intrinsic["enc_embed"]["simlex999"]
    assert simlex["pairs"] == 999 and 0 < simlex["covered"] <= 999
    from tiedtransformer.analysis import intrinsic

    monkeypatch.setattr(intrinsic, "gensim_test_data", lambda: None)
    report, _ = analyze_to_dir(dump, tmp_path / "b", AnalysisOptions(top_k=10, knn_k=3, bins=10))
    assert "skipped" in report.intrinsic and "Skipped" in markdown(report)


def test_scalars_and_tables_for_dashboards(dump, tmp_path):
    report, _ = analyze_to_dir(dump, tmp_path, AnalysisOptions(top_k=30, knn_k=3, bins=10))
    s = scalars(report)
    assert s["emb/dec_lut/mean_top30"] == report.matrices["dec_lut"].stat("mean_top")
    assert s["emb/jaccard_top30/dec_embed~dec_lut"] == 1.0
    t = tables(report, max_rows=10_000)
    cols, rows = t["emb/top30_pairs"]
    assert cols[0] == "matrix" and len(rows) == 4 * 30
    _, cut = tables(report, max_rows=40)["emb/top30_pairs"]
    assert len(cut) == 40 and max(r[1] for r in cut) == 10  # the best 10 pairs of each of 4 matrices


def test_knn_cells_are_token_and_score_to_three_decimals():
    g = torch.Generator().manual_seed(0)
    scores = torch.cat([torch.rand(500, 4, generator=g) * 2 - 1, torch.tensor([[1.0, -1.0, 0.0, -0.0001]])])
    knn = torch.randint(30, (501, 4), generator=g)
    tokens = [f"t{i}" for i in range(30)]
    want = [
        f"{tokens[j]} {s:.3f}".replace("-0.000", "0.000")
        for j, s in zip(knn.view(-1).tolist(), scores.view(-1).tolist())
    ]
    assert knn_cells(tokens, knn, scores) == want
