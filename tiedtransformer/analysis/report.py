"""Writes an analysis to disk: ``similarity.json``, ``report.md``, k-NN lists and PNG figures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tiedtransformer.analysis import figures
from tiedtransformer.analysis.dumps import EmbeddingDump
from tiedtransformer.analysis.intrinsic import evaluate
from tiedtransformer.analysis.matrices import AnalysisOptions, MatrixResult, analyze_dump, summarize
from tiedtransformer.training.runs import atomic_write_json, atomic_write_text

SHOWN_PAIRS = 20  # pairs per matrix in the Markdown report (all K are in similarity.json)


def english_sides(dump: EmbeddingDump) -> list[str]:
    if dump.src_tokens == dump.tgt_tokens:  # one joint vocabulary: every matrix has English rows
        return ["src", "tgt"]
    src, tgt = str(dump.meta.get("direction") or "en-de").split("-")
    return [side for side, lang in (("src", src), ("tgt", tgt)) if lang == "en"]


def analyze_to_dir(
    dump: EmbeddingDump, out_dir: str | Path, options: AnalysisOptions = AnalysisOptions(), progress=None
) -> tuple[dict, dict[str, MatrixResult]]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = analyze_dump(dump, options, progress)
    top_k = options.top_k
    report = summarize(results, top_k, options.bins)
    report["meta"] = dump.meta
    report["options"] = {k: v for k, v in dataclasses.asdict(options).items() if k != "device"}
    intrinsic = evaluate(dump, english_sides(dump))
    report["intrinsic"] = (
        intrinsic
        if intrinsic is not None
        else {
            "skipped": "gensim is not installed (pip install 'tiedtransformer[intrinsic]') or the dump has no SentencePiece model"
        }
    )
    atomic_write_json(out / "similarity.json", report, sort_keys=False)  # matrices in the experiment's order
    _write_knn(out, results)
    report["figures"] = _write_figures(out, report, results, top_k)
    atomic_write_text(out / "report.md", markdown(report))
    return report, results


def _write_knn(out: Path, results: dict[str, MatrixResult]) -> None:
    (out / "knn").mkdir(exist_ok=True)
    for name, r in results.items():
        if r.identical_to:
            continue
        lines = [
            r.tokens[i] + "\t" + "\t".join(f"{r.tokens[j]} {s:.3f}" for j, s in zip(row, scores)) + "\n"
            for i, (row, scores) in enumerate(zip(r.sim.knn.tolist(), r.sim.knn_scores.tolist()))
        ]
        atomic_write_text(out / "knn" / f"{name}.tsv", "".join(lines))


def _distinct_labels(results: dict[str, MatrixResult]) -> dict[str, str]:
    """One curve per distinct matrix, labelled with every name it goes by ("dec_embed = dec_lut")."""
    labels: dict[str, list[str]] = {}
    for n, r in results.items():
        labels.setdefault(r.identical_to or n, []).append(n)
    return {first: " = ".join(names) for first, names in labels.items()}


def _write_figures(out: Path, report: dict, results: dict[str, MatrixResult], top_k: int) -> dict[str, str]:
    title = " ".join(str(report["meta"].get(k, "")) for k in ("tying", "direction")).strip()
    labels = _distinct_labels(results)
    mats = report["matrices"]
    made = {
        "jaccard_top_pairs": figures.jaccard_heatmap(
            report["jaccard_top_pairs"], out / "jaccard_top_pairs.png", f"Jaccard of top-{top_k} pairs {title}"
        ),
        "jaccard_knn": figures.jaccard_heatmap(
            report["jaccard_knn"], out / "jaccard_knn.png", f"mean k-NN Jaccard {title}"
        ),
        "similarity_vs_rank": figures.rank_curves(
            {label: results[n].sim.top_scores.tolist() for n, label in labels.items()},
            out / "similarity_vs_rank.png",
            f"top-{top_k} pair similarity by rank {title}",
        ),
        "histogram": figures.histograms(
            {label: (mats[n]["histogram"]["edges"], mats[n]["histogram"]["counts"]) for n, label in labels.items()},
            out / "histogram.png",
            f"all pairwise cosines {title}",
        ),
    }
    return {k: v.name for k, v in made.items()}


def _fmt(x, digits=3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def markdown(report: dict) -> str:
    meta, mats = report["meta"], report["matrices"]
    names = list(mats)
    k = report["top_k"]
    lines = [
        f"# Token-matrix similarity: tying `{meta.get('tying')}`, {meta.get('direction')}, step {meta.get('step')}",
        "",
        f"| matrix | identical to | tokens | mean top-{k} | mean bottom-{k} | mean of all pairs |",
        "|---|---|---|---|---|---|",
    ]
    for n in names:
        m = mats[n]
        lines.append(
            f"| `{n}` | {m['identical_to'] or ''} | {m['n_tokens']} | {_fmt(m['mean_top'])} | "
            f"{_fmt(m['mean_bottom'])} | {_fmt(m['mean_all'])} |"
        )
    for key, title in (
        ("jaccard_top_pairs", f"Jaccard overlap of the top-{k} pair sets"),
        ("jaccard_knn", "Mean per-token Jaccard of the k-NN sets"),
    ):
        lines += [
            "",
            f"## {title}",
            "",
            "| | " + " | ".join(f"`{n}`" for n in names) + " |",
            "|---" * (len(names) + 1) + "|",
        ]
        lines += [f"| `{a}` | " + " | ".join(_fmt(report[key][a][b], 2) for b in names) + " |" for a in names]
    intrinsic = report.get("intrinsic") or {}
    lines += ["", "## Intrinsic quality (English rows)", ""]
    if "skipped" in intrinsic:
        lines.append(f"Skipped: {intrinsic['skipped']}.")
    else:
        lines += [
            "| matrix | SimLex-999 ρ (pairs) | WordSim-353 ρ (pairs) | plural pairs | offset consistency | plural analogy acc. |",
            "|---|---|---|---|---|---|",
        ]
        for n, r in intrinsic.items():
            s, w, p = r["simlex999"], r["wordsim353"], r["plural"]
            lines.append(
                f"| `{n}` | {_fmt(s['spearman'])} ({s['covered']}/{s['pairs']}) | {_fmt(w['spearman'])} "
                f"({w['covered']}/{w['pairs']}) | {p['pairs']} | {_fmt(p['offset_consistency'])} | "
                f"{_fmt(p['analogy_accuracy'])} |"
            )
    lines += ["", f"## Most similar pairs (first {SHOWN_PAIRS} of {k}; all in similarity.json)"]
    for n in names:
        if mats[n]["identical_to"]:
            lines += ["", f"### `{n}`: identical to `{mats[n]['identical_to']}` (the same Parameter; Jaccard 1)"]
            continue
        lines += ["", f"### `{n}`", "", "| rank | token | token | cosine |", "|---|---|---|---|"]
        lines += [
            f"| {i} | `{a}` | `{b}` | {s:.3f} |" for i, (a, b, s) in enumerate(mats[n]["top_pairs"][:SHOWN_PAIRS], 1)
        ]
    lines += ["", "## Figures", ""] + [f"![{k}]({v})" for k, v in (report.get("figures") or {}).items()]
    return "\n".join(lines) + "\n"


def scalars(report: dict) -> dict[str, float]:
    """Scalar summaries for dashboards: ``emb/<name>/mean_top<K>`` etc. and the Jaccard table."""
    k, out = report["top_k"], {}
    for n, m in report["matrices"].items():
        for key, label in (("mean_top", f"mean_top{k}"), ("mean_bottom", f"mean_bottom{k}"), ("mean_all", "mean_all")):
            if m[key] is not None:
                out[f"emb/{n}/{label}"] = m[key]
    names = list(report["matrices"])
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            out[f"emb/jaccard_top{k}/{a}~{b}"] = report["jaccard_top_pairs"][a][b]
            out[f"emb/jaccard_knn/{a}~{b}"] = report["jaccard_knn"][a][b]
    return out


def tables(report: dict, max_rows: int) -> dict[str, tuple[list[str], list[list]]]:
    """Tables (columns, rows) for W&B: top pairs of every matrix in one long table (filterable by
    matrix), and the Jaccard table. Longer tables are cut to ``max_rows`` on purpose: the best pairs
    are kept, and a ``truncated`` note says so."""
    k = report["top_k"]
    pairs = [
        [n, rank, a, b, s] for n, m in report["matrices"].items() for rank, (a, b, s) in enumerate(m["top_pairs"], 1)
    ]
    if len(pairs) > max_rows:
        per = max(1, max_rows // len(report["matrices"]))
        pairs = [row for row in pairs if row[1] <= per]
    names = list(report["matrices"])
    jac = [[a, b, report["jaccard_top_pairs"][a][b], report["jaccard_knn"][a][b]] for a in names for b in names]
    return {
        f"emb/top{k}_pairs": (["matrix", "rank", "token_a", "token_b", "cosine"], pairs),
        "emb/jaccard": (["matrix_a", "matrix_b", f"jaccard_top{k}", "jaccard_knn"], jac),
    }
