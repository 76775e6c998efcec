"""tiedtransformer.analysis.schema: the statistics against brute force, and every statistic of the tuple
reaching every output (report.md, W&B scalars, the seed tables, the comparison page, ``analyze``)."""

import json

import pytest
import torch

from tests.test_report import dump  # noqa: F401 (a fixture: a small dump of a tied network)
from tiedtransformer.analysis import schema
from tiedtransformer.analysis.compare import load_run, write_pages
from tiedtransformer.analysis.dumps import write_dump
from tiedtransformer.analysis.options import AnalysisOptions
from tiedtransformer.analysis.report import analyze_to_dir, scalars
from tiedtransformer.analysis.similarity import analyze_matrix
from tiedtransformer.run.files import DumpDir, RunDir
from tiedtransformer.run.summary import FitSummary


def test_statistics_agree_with_brute_force():
    torch.manual_seed(0)
    w = torch.randn(120, 16)
    sim = analyze_matrix(w, top_k=20, knn_k=3, bins=400)
    cos = torch.nn.functional.normalize(w.double(), dim=1) @ torch.nn.functional.normalize(w.double(), dim=1).T
    upper = cos[torch.triu_indices(120, 120, 1).unbind()]
    off = cos - 2 * torch.eye(120, dtype=torch.float64)  # a row's own cosine is never its neighbour
    stats = schema.statistics(sim)
    assert set(stats) == set(schema.KEYS)
    assert stats["mean_top"] == pytest.approx(float(upper.topk(20).values.mean()), abs=1e-5)
    assert stats["mean_bottom"] == pytest.approx(float((-upper).topk(20).values.mean().neg()), abs=1e-5)
    assert stats["mean_all"] == pytest.approx(float(upper.mean()), abs=2 / 400)  # bin centres: half a bin
    assert stats["mean_nn"] == pytest.approx(float(off.max(dim=1).values.mean()), abs=1e-5)


def test_a_cached_null_of_another_schema_is_not_taken():
    good = dict.fromkeys(schema.KEYS, 0.5)
    assert schema.is_statistics(good) and schema.is_statistics({**good, schema.KEYS[0]: None})
    assert not schema.is_statistics({k: good[k] for k in schema.KEYS[1:]})  # one missing: an older schema
    assert not schema.is_statistics({**good, "extra": 1.0}) and not schema.is_statistics({**good, "mean_top": "x"})
    assert not schema.is_statistics({**good, "mean_top": float("nan")})


FAKE = schema.Statistic("fake_stat", "made-up statistic over K", "fake_statK", lambda s: 0.4321)


def test_a_new_statistic_reaches_every_output(dump, tmp_path, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setattr(schema, "STATISTICS", (*schema.STATISTICS, FAKE))
    monkeypatch.setattr(schema, "KEYS", (*schema.KEYS, FAKE.key))
    run = RunDir(tmp_path / "run")
    options = AnalysisOptions(top_k=30, knn_k=4, bins=40)
    for step in (0, 7):
        write_dump(run.snapshot(step), dump)
        report, _ = analyze_to_dir(dump, run.snapshot(step), options, init=dump if step else None)
    run.write_summary(FitSummary(status="finished", tying="decoder", direction="en-de", seed=1))
    data = json.loads(DumpDir(run.snapshot(7)).similarity.read_text())["matrices"]["dec_lut"]
    assert data["fake_stat"] == 0.4321 and data["nulls"]["random"]["fake_stat"] == 0.4321  # with its nulls
    assert data["nulls"]["init"]["fake_stat"] == 0.4321
    md = DumpDir(run.snapshot(7)).report.read_text()
    assert "made-up statistic over 30" in md and "0.432 / 0.432 / 0.432" in md
    assert scalars(report)["emb/dec_lut/fake_stat30"] == 0.4321
    assert scalars(report)["emb/dec_lut/fake_stat30_random"] == 0.4321
    paths, _, tables = write_pages([load_run(run.path)], tmp_path / "compare.html")
    assert any(t["title"] == "Made-up statistic over 30, against its nulls" for t in tables)
    assert "Made-up statistic over 30" in paths["md"].read_text()
    assert "made-up statistic over 30" in paths["html"].read_text()  # the run's own section

    from tiedtransformer.cli import main

    main(["analyze", str(DumpDir(run.snapshot(7)).path), "--analysis.top_k=30", "--analysis.bins=40"])
    assert "made-up statistic over 30" in capsys.readouterr().out


def test_a_dump_analysis_reads_back_what_it_writes_and_keeps_what_it_does_not_know():
    from tiedtransformer.analysis.schema import DumpAnalysis, MatrixAnalysis

    data = {
        "top_k": 2,
        "knn_k": 1,
        "matrices": {
            "enc_embed": {
                "identical_to": None,
                "n_tokens": 3,
                "n_pairs": 3,
                "top_pairs": [["a", "b", 0.9]],
                "bottom_pairs": [["a", "c", -0.2]],
                **{s.key: 0.5 for s in schema.STATISTICS},
                "kinds": {"other": 1.0},
                "nulls": {"init": {"mean_top": 0.1}},
                "rare": None,
                "histogram": {"edges": [-1, 1], "counts": [3]},
                "from_a_newer_writer": 7,
            }
        },
        "jaccard_top_pairs": {"enc_embed": {"enc_embed": 1.0}},
        "jaccard_knn": {"enc_embed": {"enc_embed": 1.0}},
        "chance_jaccard_top_pairs": {"enc_embed": {"enc_embed": 0.01}},
        "chance_jaccard_knn": {"enc_embed": {"enc_embed": 0.02}},
        "meta": {"step": 7},
        "options": {"top_k": 2},
        "intrinsic": {"skipped": "no gensim"},
        "a_newer_section": [1],
    }
    report = DumpAnalysis.from_json(data)
    m = report.matrices["enc_embed"]
    assert m.stat("mean_top") == 0.5 and m.stat("mean_top", "init") == 0.1 and m.stat("mean_top", "random") is None
    assert m.extra == {"from_a_newer_writer": 7} and report.extra == {"a_newer_section": [1]}
    assert report.jaccard("knn") == data["jaccard_knn"] and report.chance("top_pairs")["enc_embed"]["enc_embed"] == 0.01
    back = report.to_json()
    assert back == data and list(back["matrices"]["enc_embed"])[5] == schema.STATISTICS[0].key  # order kept
    trimmed = MatrixAnalysis.from_json({"identical_to": "dec_embed", "top_pairs": []})  # a kept copy's, trimmed
    assert trimmed.histogram is None and trimmed.statistics == {} and "histogram" not in trimmed.to_json()
    assert DumpAnalysis.from_json(None).matrices == {}  # an unreadable report reads as an empty one
