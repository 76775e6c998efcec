"""Token matrices of two runs compared by token text (Press & Wolf's Table 3 compares embeddings
this way): for every pair of matrices (one of run A, one of run B), over the tokens both keep, the
Jaccard of their top-K pair sets, the mean per-token Jaccard of their k-NN sets, and the Spearman
correlation of their cosines over a fixed sample of token pairs; each with its chance level.

Rows are matched by token text, so the two runs may order (or even choose) their vocabularies
differently; with the same data and vocabulary options they share it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import torch

from tiedtransformer.analysis import figures
from tiedtransformer.analysis.dumps import EmbeddingDump
from tiedtransformer.analysis.matrices import (
    MatrixResult,
    _similarity,
    kept_rows,
    knn_jaccard_by_token,
)
from tiedtransformer.analysis.options import AnalysisOptions
from tiedtransformer.analysis.similarity import (
    chance_jaccard,
    jaccard,
    pair_cosines,
    rank_correlation,
    sample_pairs,
)
from tiedtransformer.atomic import atomic_write_json, atomic_write_text
from tiedtransformer.model.network import first_tied
from tiedtransformer.run.files import CrossDir

MEASURES = {
    "jaccard_top_pairs": "Jaccard of the top-K pair sets",
    "jaccard_knn": "mean per-token Jaccard of the k-NN sets",
    "spearman": "Spearman ρ of cosines over sampled token pairs",
}


def common_tokens(a: EmbeddingDump, name_a: str, b: EmbeddingDump, name_b: str, min_count: int) -> list[str]:
    """Token texts that both matrices keep (ordinary, not rare in either run), in A's row order."""
    ta, tb = a.tokens(name_a), b.tokens(name_b)
    in_b = {tb[i] for i in kept_rows(b, name_b, min_count).tolist()}
    return [ta[i] for i in kept_rows(a, name_a, min_count).tolist() if ta[i] in in_b]


def rows_of(dump: EmbeddingDump, name: str, tokens: list[str]) -> torch.Tensor:
    index = {t: i for i, t in enumerate(dump.tokens(name))}
    return torch.tensor([index[t] for t in tokens], dtype=torch.long)


def compare_matrices(
    wa: torch.Tensor,
    wb: torch.Tensor,
    tokens: list[str],
    options: AnalysisOptions,
    pairs: int,
    cache: dict | None = None,
    keys: tuple = (None, None),
) -> dict:
    """The three measures of two matrices whose rows are the same ``tokens``, in the same order.
    ``cache`` keeps analyses under ``keys`` (one per matrix; with the token set): a matrix meets four
    others."""
    digest = hashlib.sha1("\n".join(tokens).encode()).hexdigest()

    def analysed(w: torch.Tensor, key) -> MatrixResult:
        if cache is None or key is None:
            return MatrixResult("", tokens, _similarity(w, options))
        if (key, digest) not in cache:
            cache[key, digest] = MatrixResult("", tokens, _similarity(w, options))
        return cache[key, digest]

    n = len(tokens)
    ra, rb = analysed(wa, keys[0]), analysed(wb, keys[1])
    sample = sample_pairs(n, pairs, options.null_seed)
    n_pairs = n * (n - 1) // 2
    return {
        "tokens": n,
        "jaccard_top_pairs": jaccard(ra.pair_set(), rb.pair_set()),
        "jaccard_knn": knn_jaccard_by_token(ra.knn_sets(), rb.knn_sets()),
        "spearman": rank_correlation(pair_cosines(wa, sample), pair_cosines(wb, sample)),
        "chance": {
            "jaccard_top_pairs": chance_jaccard(min(options.top_k, n_pairs), n_pairs),
            "jaccard_knn": chance_jaccard(min(options.knn_k, n - 1), n - 1),
            "spearman": 0.0,
        },
        "sampled_pairs": int(sample.size(0)),
    }


def cross_compare(
    a: EmbeddingDump, b: EmbeddingDump, options: AnalysisOptions = AnalysisOptions(), pairs: int = 100_000
) -> dict:
    """Every matrix of A against every matrix of B: ``{measure: {A name: {B name: value}}}``, the chance
    levels, and the number of common tokens per cell."""
    cache: dict = {}
    ties_a, ties_b = first_tied(a.matrices), first_tied(b.matrices)
    out: dict = {m: {} for m in MEASURES} | {"chance": {}, "tokens": {}}
    for na, wa in a.matrices.items():
        for m in out:
            out[m][na] = {}
        for nb, wb in b.matrices.items():
            tokens = common_tokens(a, na, b, nb, options.min_count)
            if len(tokens) < 3:
                cell = {m: None for m in MEASURES} | {"chance": None, "tokens": len(tokens)}
            else:
                keys = (("A", ties_a[na] or na), ("B", ties_b[nb] or nb))  # a tied matrix is analysed once
                wa_rows, wb_rows = wa[rows_of(a, na, tokens)], wb[rows_of(b, nb, tokens)]
                cell = compare_matrices(wa_rows, wb_rows, tokens, options, pairs, cache, keys)
            for m in (*MEASURES, "chance", "tokens"):
                out[m][na][nb] = cell[m]
    return out


def cross_to_dir(
    a: EmbeddingDump,
    b: EmbeddingDump,
    labels: tuple[str, str],
    out_dir: str | Path,
    options: AnalysisOptions,
    pairs: int,
) -> dict:
    """:func:`cross_compare` written as ``cross.json``, ``cross.md`` and one heatmap per measure."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = cross_compare(a, b, options, pairs)
    report = {
        "a": {"label": labels[0], "meta": a.meta, "tied": first_tied(a.matrices)},
        "b": {"label": labels[1], "meta": b.meta, "tied": first_tied(b.matrices)},
        "options": {k: v for k, v in dataclasses.asdict(options).items() if k != "device"} | {"sampled_pairs": pairs},
        **result,
    }
    atomic_write_json(CrossDir(out).json, report, sort_keys=False)
    report["figures"] = {
        m: figures.jaccard_heatmap(
            {f"A {x}": {f"B {y}": v for y, v in row.items()} for x, row in result[m].items()},
            CrossDir(out).figure(m),
            f"{title}: A rows, B columns",
        ).name
        for m, title in MEASURES.items()
    }
    atomic_write_text(CrossDir(out).report, markdown(report))
    return report


def markdown(report: dict) -> str:
    a, b, k = report["a"], report["b"], report["options"]["top_k"]
    names_a = list(report["jaccard_top_pairs"])
    names_b = list(next(iter(report["jaccard_top_pairs"].values()), {}))
    lines = [
        "# Token matrices of two runs compared by token text",
        "",
        f"- A: {a['label']}",
        f"- B: {b['label']}",
        "",
        f"Over the tokens both keep (seen at least {report['options']['min_count']} times in each run's "
        f"vocabulary sample); top-{k} pairs, {report['options']['knn_k']}-NN, Spearman over "
        f"{report['options']['sampled_pairs']:,} sampled pairs. Chance levels in brackets.",
    ]
    for m, title in MEASURES.items():
        lines += [
            "",
            f"## {title.replace('top-K', f'top-{k}')}",
            "",
            "| A \\ B | " + " | ".join(f"`{n}`" for n in names_b) + " |",
        ]
        lines.append("|---" * (len(names_b) + 1) + "|")
        for x in names_a:
            cells = []
            for y in names_b:
                v, c = report[m][x][y], (report["chance"][x][y] or {}).get(m)
                cells.append("–" if v is None else f"{v:.3f} ({c:.3g})")
            lines.append(f"| `{x}` | " + " | ".join(cells) + " |")
    lines += ["", *[f"![{m}]({f})" for m, f in report.get("figures", {}).items()]]
    return "\n".join(lines) + "\n"
