"""The random null of the kept runs' intrinsic scores, for runs analysed before the analysis drew one.

    python docs/intrinsic_null.py      # needs the runs' training data (their config.yaml's data.train_path)

For each kept run (docs/results/grid/*), the SimLex-999 / WordSim-353 Spearman ρ of random Gaussian
matrices of each English matrix's shape (their mean over ``intrinsic.NULL_DRAWS`` draws, and one draw's
standard deviation), words split by the run's own SentencePiece model (rebuilt from its
config: same data, size and seed), seeded as the analysis seeds it (``intrinsic.null_seed`` of the run's
seed and the matrix's name). Writes docs/results/intrinsic_null.json, which docs/make_results.py reads
where a run's similarity-final.json has no ``random`` entry.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import sentencepiece as spm
import yaml

from tiedtransformer.analysis.intrinsic import DATASETS, gensim_test_data, null_seed, random_null, read_word_pairs
from tiedtransformer.analysis.schema import DumpAnalysis
from tiedtransformer.data.datamodule import TranslationData
from tiedtransformer.run.files import RunDir

DOCS = Path(__file__).resolve().parent
KEPT = DOCS / "results" / "grid"
OUT = DOCS / "results" / "intrinsic_null.json"


def main() -> None:
    data = gensim_test_data()
    if data is None:
        sys.exit("gensim is not installed: pip install -e '.[intrinsic]'")
    word_pairs = {key: read_word_pairs(data / f) for key, f in DATASETS.items()}
    out, processors = {}, {}
    for run in (RunDir(p) for p in sorted(KEPT.iterdir()) if RunDir(p).final_similarity.is_file()):
        config = yaml.safe_load(run.config.read_text())
        key = json.dumps(config["data"], sort_keys=True)
        if key not in processors:  # one vocabulary for every run of the grid: built (or read from its cache) once
            dm = TranslationData(**config["data"])
            dm.prepare_data()
            dm.setup("fit")
            processors[key] = {
                lang: spm.SentencePieceProcessor(model_file=dm.vocab.model_files[lang]) for lang in ("en", "de")
            }
        sim = DumpAnalysis.from_json(json.loads(run.final_similarity.read_text()))
        rows, d = processors[key]["en"].get_piece_size(), config["model"]["net"]["d_model"]
        out[run.name] = {
            name: random_null((rows, d), processors[key]["en"], word_pairs, null_seed(config["seed_everything"], name))
            for name in sim.intrinsic or {}
            if name != "skipped"
        }
        print(run.name, json.dumps(out[run.name]), flush=True)
    OUT.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
