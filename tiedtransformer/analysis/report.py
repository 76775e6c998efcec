"""Writes an analysis to disk: ``similarity.json``, ``report.md``, k-NN lists and PNG figures."""

from __future__ import annotations

import dataclasses
import importlib
import threading
from pathlib import Path

from tiedtransformer.analysis import schema
from tiedtransformer.analysis.dumps import EmbeddingDump
from tiedtransformer.analysis.intrinsic import evaluate
from tiedtransformer.analysis.matrices import MatrixResult, analyze_dump, summarize
from tiedtransformer.analysis.numbers import fmt
from tiedtransformer.analysis.options import AnalysisOptions
from tiedtransformer.atomic import atomic_write_json, atomic_write_text
from tiedtransformer.run.files import DumpDir, RunDir
from tiedtransformer.specials import NUM_SPECIALS

SHOWN_PAIRS = 20  # pairs per matrix in the Markdown report (all K are in similarity.json)


def english_sides(dump: EmbeddingDump) -> list[str]:
    if dump.src_tokens == dump.tgt_tokens:  # one joint vocabulary: every matrix has English rows
        return ["src", "tgt"]
    src, tgt = str(dump.meta.get("direction") or "en-de").split("-")
    return [side for side, lang in (("src", src), ("tgt", tgt)) if lang == "en"]


def init_snapshot(path: str | Path) -> Path | None:
    """The step-0 snapshot of the run that a dump or checkpoint lies in, if there is one."""
    run = RunDir.containing(path)
    first = run.snapshot(0) if run else None
    return first if first is not None and DumpDir(first).is_dump() else None


def analyze_to_dir(
    dump: EmbeddingDump,
    out_dir: str | Path,
    options: AnalysisOptions = AnalysisOptions(),
    progress=None,
    init: EmbeddingDump | None = None,
) -> tuple[schema.DumpAnalysis, dict[str, MatrixResult]]:
    """Analyse ``dump`` (with ``init``, its run's step-0 snapshot, as a null) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # the figures' module (matplotlib: about a second) is imported beside the analysis, whose tensor
    # operations leave Python free; the import lock makes the later import wait for this one
    threading.Thread(target=importlib.import_module, args=("tiedtransformer.analysis.figures",), daemon=True).start()
    results = analyze_dump(dump, options, progress, init)
    top_k = options.top_k
    report = summarize(results, top_k, options.bins, options.knn_k)
    report.meta = dump.meta
    report.options = {k: v for k, v in dataclasses.asdict(options).items() if k != "device"}
    intrinsic = evaluate(dump, english_sides(dump))
    report.intrinsic = (
        intrinsic
        if intrinsic is not None
        else {
            "skipped": "gensim is not installed (pip install 'tiedtransformer[intrinsic]') or the dump has no SentencePiece model"
        }
    )
    atomic_write_json(DumpDir(out).similarity, report.to_json(), sort_keys=False)  # matrices in the experiment's order
    _write_knn(out, results)
    report.figures = _write_figures(out, report, results, top_k)
    atomic_write_text(DumpDir(out).report, markdown(report))
    return report, results


def _write_knn(out: Path, results: dict[str, MatrixResult]) -> None:
    """``knn/NAME.tsv``: a token, then its neighbours nearest first, each as ``token score``."""
    DumpDir(out).knn_dir.mkdir(exist_ok=True)
    for name, r in results.items():
        if r.identical_to:
            continue
        k = r.sim.knn.size(1)
        cells = knn_cells(r.tokens, r.sim.knn, r.sim.knn_scores)
        lines = ["\t".join([token, *cells[i * k : (i + 1) * k]]) for i, token in enumerate(r.tokens)]
        atomic_write_text(DumpDir(out).knn(name), "".join(line + "\n" for line in lines))


_SCORE_TEXT = [f" {m / 1000:.3f}" for m in range(-1000, 1001)]  # " -1.000" .. " 1.000", by thousandths


def knn_cells(tokens: list[str], knn, scores) -> list[str]:
    """``token score`` for every neighbour of every row, row after row, the score with 3 decimals (as
    ``{:.3f}``, but never "-0.000"); one pass over all of them, the scores looked up by thousandths
    instead of formatted one by one."""
    milli = (scores.double().view(-1).clamp(-1, 1) * 1000).round().long().add_(1000).tolist()
    return list(map(str.__add__, map(tokens.__getitem__, knn.view(-1).tolist()), map(_SCORE_TEXT.__getitem__, milli)))


def _distinct_labels(results: dict[str, MatrixResult]) -> dict[str, str]:
    """One curve per distinct matrix, labelled with every name it goes by ("dec_embed = dec_lut")."""
    labels: dict[str, list[str]] = {}
    for n, r in results.items():
        labels.setdefault(r.identical_to or n, []).append(n)
    return {first: " = ".join(names) for first, names in labels.items()}


def _write_figures(
    out: Path, report: schema.DumpAnalysis, results: dict[str, MatrixResult], top_k: int
) -> dict[str, str]:
    from tiedtransformer.analysis import figures  # matplotlib: imported only where figures are made

    title = " ".join(str(report.meta.get(k, "")) for k in ("tying", "direction")).strip()
    labels = _distinct_labels(results)
    mats = report.matrices
    made = {}
    if len(results) > 1:  # a table of one matrix against itself says nothing
        made["jaccard_top_pairs"] = figures.jaccard_heatmap(
            report.jaccard_top_pairs,
            DumpDir(out).figure("jaccard_top_pairs"),
            f"Jaccard of top-{top_k} pairs {title}",
        )
        made["jaccard_knn"] = figures.jaccard_heatmap(
            report.jaccard_knn, DumpDir(out).figure("jaccard_knn"), f"mean k-NN Jaccard {title}"
        )
    made["similarity_vs_rank"] = figures.rank_curves(
        {label: results[n].sim.top_scores.tolist() for n, label in labels.items()},
        DumpDir(out).figure("similarity_vs_rank"),
        f"top-{top_k} pair similarity by rank {title}",
    )
    made["histogram"] = figures.histograms(
        {label: (mats[n].histogram["edges"], mats[n].histogram["counts"]) for n, label in labels.items()},
        DumpDir(out).figure("histogram"),
        f"all pairwise cosines {title}",
    )
    return {k: v.name for k, v in made.items()}


def _with_nulls(m: schema.MatrixAnalysis, key: str) -> str:
    """``learned / init / random`` of one statistic (– where a null is missing)."""
    if not m.nulls:
        return fmt(m.stat(key))
    return " / ".join(fmt(m.stat(key, null)) for null in (None, "init", "random"))


def _rare_lines(mats: dict[str, schema.MatrixAnalysis], k: int) -> list[str]:
    rows = [(n, m.rare) for n, m in mats.items() if m.rare and not m.identical_to]
    if not rows:
        return []
    lines = [
        "",
        "## Rare tokens",
        "",
        f"With every token kept, the share of the top-{k} pairs that involve a left-out token, their mean "
        "cosine, and per training-count band the mean nearest-neighbour cosine (rare rows collapse together: "
        "high values in the rare band are that collapse, not meaning).",
        "",
    ]
    bands = [b["counts"] + (" (left out)" if b["left_out"] else "") for b in rows[0][1]["bands"]]
    lines += [
        f"| matrix | tokens left out | top-{k} pairs with a rare token | mean top-{k}, all tokens | "
        + " | ".join(f"NN cosine, count {b}" for b in bands)
        + " |",
        "|---" * (4 + len(bands)) + "|",
    ]
    for n, r in rows:
        cells = [f"{fmt(b['mean_nn'])} ({b['tokens']})" for b in r["bands"]]
        lines.append(
            f"| `{n}` | {r['tokens_left_out']} | {fmt(r['share_of_top_pairs_with_rare'], 2)} | "
            f"{fmt(r['mean_top_all_tokens'])} | " + " | ".join(cells) + " |"
        )
    return lines


def markdown(report: schema.DumpAnalysis) -> str:
    meta, mats = report.meta, report.matrices
    names = list(mats)
    k = report.top_k
    opts = report.options
    lines = [
        f"# Token-matrix similarity: tying `{meta.get('tying')}`, {meta.get('direction')}, step {meta.get('step')}",
        "",
        f"Tokens seen fewer than {opts.get('min_count', 0)} times in the vocabulary's training sample are left out "
        "(see *Rare tokens*). Each statistic is shown as learned / at initialisation (step-0 snapshot) / "
        "random matrix of the same shape and row norms.",
        "",
        "| matrix | identical to | tokens | " + " | ".join(s.words(k) for s in schema.STATISTICS) + " |",
        "|---" * (3 + len(schema.STATISTICS)) + "|",
    ]
    for n in names:
        m = mats[n]
        cells = [_with_nulls(m, s.key) for s in schema.STATISTICS]
        lines.append(f"| `{n}` | {m.identical_to or ''} | {m.n_tokens} | " + " | ".join(cells) + " |")
    shared = {n: mats[n].stat("jaccard_top_pairs_with_learned", "init") for n in names}
    if any(v is not None for v in shared.values()):
        lines += [
            "",
            f"Jaccard of the top-{k} pairs with those at initialisation (1: the structure was there before "
            "training): " + ", ".join(f"`{n}` {fmt(v, 2)}" for n, v in shared.items() if v is not None) + ".",
        ]
    for kind, title in (
        ("top_pairs", f"Jaccard overlap of the top-{k} pair sets"),
        ("knn", "Mean per-token Jaccard of the k-NN sets"),
    ):
        chance = report.chance(kind)
        lines += [
            "",
            f"## {title}",
            "",
            *(
                [
                    f"Chance level (two unrelated matrices over the same tokens): {fmt(chance[names[0]][names[0]], 5)}.",
                    "",
                ]
                if chance and names
                else []
            ),
            "| | " + " | ".join(f"`{n}`" for n in names) + " |",
            "|---" * (len(names) + 1) + "|",
        ]
        table = report.jaccard(kind)
        lines += [f"| `{a}` | " + " | ".join(fmt(table[a][b], 2) for b in names) + " |" for a in names]
    lines += _rare_lines(mats, k) + _intrinsic_lines(report.intrinsic or {}) + _pair_lines(mats, k)
    lines += ["", "## Figures", ""] + [f"![{k}]({v})" for k, v in (report.figures or {}).items()]
    return "\n".join(lines) + "\n"


def _intrinsic_lines(intrinsic: dict) -> list[str]:
    lines = ["", "## Intrinsic quality (English rows)", ""]
    if "skipped" in intrinsic:
        return [*lines, f"Skipped: {intrinsic['skipped']}."]
    lines += [
        "| matrix | SimLex-999 ρ (pairs) | WordSim-353 ρ (pairs) | random matrix: SimLex / WordSim ρ "
        "| plural pairs | offset consistency | plural analogy acc. |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, r in intrinsic.items():
        s, w, p, rnd = r["simlex999"], r["wordsim353"], r["plural"], r.get("random") or {}
        lines.append(
            f"| `{n}` | {fmt(s['spearman'])} ({s['covered']}/{s['pairs']}) | {fmt(w['spearman'])} "
            f"({w['covered']}/{w['pairs']}) | {fmt(rnd.get('simlex999'))} / {fmt(rnd.get('wordsim353'))} | "
            f"{p['pairs']} | {fmt(p['offset_consistency'])} | {fmt(p['analogy_accuracy'])} |"
        )
    return lines


def _pair_lines(mats: dict[str, schema.MatrixAnalysis], k: int) -> list[str]:
    lines = ["", f"## Most similar pairs (first {SHOWN_PAIRS} of {k}; all in {DumpDir.SIMILARITY})"]
    for n, m in mats.items():
        if m.identical_to:
            lines += ["", f"### `{n}`: identical to `{m.identical_to}` (the same Parameter; Jaccard 1)"]
            continue
        lines += ["", f"### `{n}`", "", "| rank | token | token | cosine |", "|---|---|---|---|"]
        lines += [f"| {i} | `{a}` | `{b}` | {s:.3f} |" for i, (a, b, s) in enumerate(m.top_pairs[:SHOWN_PAIRS], 1)]
    return lines


def scalars(report: schema.DumpAnalysis) -> dict[str, float]:
    """Scalar summaries for dashboards: ``emb/<name>/mean_top<K>`` etc. and the Jaccard table."""
    k, out = report.top_k, {}
    for n, m in report.matrices.items():
        for key, label in ((s.key, s.scalar_name(k)) for s in schema.STATISTICS):
            if m.stat(key) is not None:
                out[f"emb/{n}/{label}"] = m.stat(key)
            for null in m.nulls:
                if m.stat(key, null) is not None:
                    out[f"emb/{n}/{label}_{null}"] = m.stat(key, null)
        if (m.rare or {}).get("share_of_top_pairs_with_rare") is not None:
            out[f"emb/{n}/rare_share_top{k}"] = m.rare["share_of_top_pairs_with_rare"]
    names = list(report.matrices)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            out[f"emb/jaccard_top{k}/{a}~{b}"] = report.jaccard_top_pairs[a][b]
            out[f"emb/jaccard_knn/{a}~{b}"] = report.jaccard_knn[a][b]
    return out


def tables(report: schema.DumpAnalysis, max_rows: int) -> dict[str, tuple[list[str], list[list]]]:
    """Tables (columns, rows) for W&B: top pairs of every matrix in one long table (filterable by
    matrix), and the Jaccard table. Longer tables are cut to ``max_rows`` on purpose: the best pairs
    are kept, and a ``truncated`` note says so."""
    k = report.top_k
    pairs = [[n, rank, a, b, s] for n, m in report.matrices.items() for rank, (a, b, s) in enumerate(m.top_pairs, 1)]
    if len(pairs) > max_rows:
        per = max(1, max_rows // len(report.matrices))
        pairs = [row for row in pairs if row[1] <= per]
    names = list(report.matrices)
    jac = [[a, b, report.jaccard_top_pairs[a][b], report.jaccard_knn[a][b]] for a in names for b in names]
    return {
        f"emb/top{k}_pairs": (["matrix", "rank", "token_a", "token_b", "cosine"], pairs),
        "emb/jaccard": (["matrix_a", "matrix_b", f"jaccard_top{k}", "jaccard_knn"], jac),
    }


def projector_table(dump: EmbeddingDump, rows: int = 500) -> tuple[list[str], list[list]]:
    """The ``rows`` most frequent tokens' rows of every matrix in one table (matrix, token, count, d0 ...):
    W&B's embedding projector (2D projection: PCA, UMAP, t-SNE) draws them side by side, coloured by matrix.
    Special tokens are left out; without counts, the first rows of the vocabulary are taken."""
    width = next(iter(dump.matrices.values())).size(1)
    out = []
    for name, w in dump.matrices.items():
        counts = (dump.counts or {}).get(dump.side(name))
        order = list(range(NUM_SPECIALS, w.size(0)))
        if counts:
            order.sort(key=lambda i: -counts[i])
        tokens = dump.tokens(name)
        for i in order[:rows]:
            out.append([name, tokens[i], counts[i] if counts else None, *w[i].float().tolist()])
    return ["matrix", "token", "count", *(f"d{j}" for j in range(width))], out
