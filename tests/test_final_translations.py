from types import SimpleNamespace

from tiedtransformer.callbacks import FinalTranslations

from tiedtransformer.run.files import RunDir

SCORES = {"bleu": 31.5, "chrf": 58.25, "sentences": 2, "search": "beam 4", "bleu_ci": 0.5, "chrf_ci": 0.25}


def _fit(tmp_path, rank_zero=True, outputs=None):
    trainer = SimpleNamespace(
        is_global_zero=rank_zero, default_root_dir=str(tmp_path), datamodule=SimpleNamespace(tgt_lang="de")
    )
    module = SimpleNamespace(final_outputs=outputs or {})
    return trainer, module


def test_the_final_translations_and_test_references_are_written_and_announced(tmp_path, capsys):
    outputs = {
        "val": {"split": "valid", "hyps": ["ein Hund", "eine Katze"], "refs": None, "scores": SCORES},
        "test": {"split": "test", "hyps": ["ein Haus", ""], "refs": ["das Haus", "ja"], "scores": SCORES},
    }
    cb = FinalTranslations()
    cb.on_fit_end(*_fit(tmp_path, outputs=outputs))
    run = RunDir(tmp_path)
    assert run.final_translations("de", "val").read_text() == "ein Hund\neine Katze\n"
    assert run.final_translations("de", "test").read_text() == "ein Haus\n\n"  # an empty line stays a line
    assert run.final_references("de", "test").read_text() == "das Haus\nja\n"
    assert not run.final_references("de", "val").exists()
    out = capsys.readouterr().out
    assert "final evaluation: valid BLEU 31.50  chrF 58.25  on all 2 sentences (beam 4)" in out
    assert "final evaluation: test BLEU 31.50  chrF 58.25 (95% bootstrap ±0.50 / ±0.25)" in out
    assert str(run.final_translations("de", "test")) in out and len(cb.written) == 3


def test_only_rank_zero_writes_and_a_fit_without_final_evaluation_writes_nothing(tmp_path, capsys):
    outputs = {"val": {"split": "valid", "hyps": ["x"], "refs": None, "scores": SCORES}}
    FinalTranslations().on_fit_end(*_fit(tmp_path, rank_zero=False, outputs=outputs))
    FinalTranslations().on_fit_end(*_fit(tmp_path))
    assert list(tmp_path.iterdir()) == [] and capsys.readouterr().out == ""


def test_test_scores_are_printed_with_their_signatures(tmp_path, capsys):
    trainer, _ = _fit(tmp_path)
    scores = {**SCORES, "bleu_signature": "nrefs:1|bleu", "chrf_signature": "nrefs:1|chrf"}
    FinalTranslations().on_test_end(trainer, SimpleNamespace(test_scores=scores))
    out = capsys.readouterr().out
    assert out.startswith("test: BLEU 31.50  chrF 58.25  on 2 sentences (beam 4)") and "nrefs:1|chrf" in out
