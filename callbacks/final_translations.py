"""Writes what the module's final evaluation and ``test`` translated, and says where: the module scores,
this callback puts the results on disk and on the console."""

from __future__ import annotations

from pathlib import Path

import lightning as L

from tiedtransformer.atomic import atomic_write_text
from tiedtransformer.run.files import RunDir


def _lines(texts: list[str]) -> str:
    return "".join(x + "\n" for x in texts)


class FinalTranslations(L.Callback):
    """After fit, the final evaluation's translations go to ``final-<stage>.<lang>`` in the run directory
    (and the test set's references to ``final-test.ref.<lang>``, for paired significance tests); after
    ``test``, its scores are printed with their sacreBLEU signatures. Rank zero writes and prints."""

    def __init__(self):
        self.written: list[Path] = []

    def on_fit_end(self, trainer, pl_module) -> None:
        outputs = getattr(pl_module, "final_outputs", None) or {}
        if not trainer.is_global_zero or not outputs:
            return
        run, lang = RunDir.of(trainer), trainer.datamodule.tgt_lang
        for stage, out in outputs.items():
            path = run.final_translations(lang, stage)
            atomic_write_text(path, _lines(out["hyps"]))
            self.written.append(path)
            s, ci = out["scores"], ""
            if out.get("refs") is not None:
                refs = run.final_references(lang, stage)
                atomic_write_text(refs, _lines(out["refs"]))
                self.written.append(refs)
                ci = f" (95% bootstrap ±{s['bleu_ci']:.2f} / ±{s['chrf_ci']:.2f})"
            print(
                f"final evaluation: {out['split']} BLEU {s['bleu']:.2f}  chrF {s['chrf']:.2f}{ci}  on all "
                f"{s['sentences']} sentences ({s['search']}); translations in {path}",
                flush=True,
            )

    def on_test_end(self, trainer, pl_module) -> None:
        s = getattr(pl_module, "test_scores", None)
        if trainer.is_global_zero and s:
            print(
                f"test: BLEU {s['bleu']:.2f}  chrF {s['chrf']:.2f}  on {s['sentences']} "
                f"sentences ({s['search']})\n  {s['bleu_signature']}\n  {s['chrf_signature']}",
                flush=True,
            )
