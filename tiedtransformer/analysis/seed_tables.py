"""The seed experiment's tables, over the runs of ``tiedtransformer compare`` grouped by (direction,
tying mode): across seeds, the cost of tying (parameters, speed, BLEU/chrF), each matrix's mean top-K
similarity beside its nulls, the 4×4 Jaccard matrix of the top pairs, the human-similarity
correlations, how settled each matrix is, and its top pairs. Pure functions of the loaded runs; each
table is ``{"title", "note", "header", "rows"}`` with formatted cells."""

from __future__ import annotations

from statistics import mean, stdev

from tiedtransformer.analysis import schema
from tiedtransformer.analysis.dumps import MATRIX_NAMES
from tiedtransformer.analysis.numbers import fmt, number
from tiedtransformer.analysis.settled import settled_series
from tiedtransformer.analysis.verdict import verdict
from tiedtransformer.model.network import TYING_MODES
from tiedtransformer.run.files import RunDir

MODES = TYING_MODES  # the order of the tables
SHOWN_PAIRS = 6


def groups(runs: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Runs by (direction, tying), in the experiment's order; within a group by seed (every per-seed list of the
    page is then in seed order)."""
    out: dict[tuple[str, str], list[dict]] = {}
    for r in sorted(runs, key=lambda r: (r.get("seed") is None, r.get("seed") or 0, r["name"])):
        s = r["summary"]
        out.setdefault((str(s.direction), str(s.tying)), []).append(r)
    order = {m: i for i, m in enumerate(MODES)}
    return dict(sorted(out.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], len(MODES)), kv[0][1])))


def mean_std(values: list[float | None], digits: int = 2) -> str:
    xs = [v for v in values if v is not None]
    if not xs:
        return "–"
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f}"
    return f"{mean(xs):.{digits}f} ± {stdev(xs):.{digits}f}"


def _mean(values) -> float | None:
    xs = [v for v in values if v is not None]
    return mean(xs) if xs else None


def defined_values(runs: list[dict], fn) -> list[float]:
    """``fn(run)`` for every run where it is defined (not None)."""
    out = []
    for r in runs:
        try:
            v = fn(r)
        except (KeyError, TypeError, ValueError):
            v = None
        if v is not None:
            out.append(float(v))
    return out


def cost_table(runs: list[dict], rows: list[dict]) -> dict:
    by_name = {r["directory"]: r for r in rows}
    g = groups(runs)
    base = {d: members for (d, t), members in g.items() if t == "none"}
    out = []
    for (direction, tying), members in g.items():
        ref = base.get(direction, [])

        def avg(key, rs=members):
            return _mean([number(getattr(r["summary"], key)) for r in rs])

        def delta(key, pct):
            x, y = avg(key), avg(key, ref)
            if x is None or y is None or not ref:
                return "–"
            return f"{100 * (x - y) / y:+.1f}" if pct else f"{x - y:+.2f}"

        ps = [by_name[r["name"]].get("test_bleu_p") for r in members if r["name"] in by_name]
        out.append(
            [
                direction,
                tying,
                len(members),
                f"{avg('unique_params') / 1e6:.2f}" if avg("unique_params") else "–",
                delta("unique_params", True),
                mean_std([number(r["summary"].final_test_bleu) for r in members]),
                delta("final_test_bleu", False),
                mean_std([number(r["summary"].final_test_chrf) for r in members]),
                " / ".join("–" if p is None else fmt(p) for p in ps) if any(p is not None for p in ps) else "–",
                mean_std([number(r["summary"].final_val_bleu) for r in members]),
            ]
        )
    return {
        "title": "What tying costs, across seeds",
        "note": "Mean ± standard deviation over the runs (seeds) of each group; Δ against the untied runs "
        "of the same direction. p: sacreBLEU paired bootstrap (1000 resamples) of test BLEU against the "
        "untied run of the same seed, one per seed (in seed order). Speed is not here: the tokens/s a run "
        "measures of itself move with whatever else the machine is doing (the run table has them; an "
        "interleaved benchmark measures speed: benchmarks/tying.py).",
        "header": [
            "direction",
            "tying",
            "runs",
            "unique params (M)",
            "Δ params (%)",
            "test BLEU (mean ± sd)",
            "Δ test BLEU",
            "test chrF (mean ± sd)",
            "p (test BLEU) per seed",
            "final val BLEU (mean ± sd)",
        ],
        "rows": out,
    }


def _matrices(r: dict) -> dict[str, schema.MatrixAnalysis]:
    return r["similarity"].matrices if r.get("similarity") else {}


def per_matrix_rows(runs: list[dict], cell) -> list[list]:
    """One row per (direction, tying) group: ``cell(members, matrix name)`` for each of the four matrices."""
    return [[d, t, *(cell(members, name) for name in MATRIX_NAMES)] for (d, t), members in groups(runs).items()]


def similarity_table(runs: list[dict], key: str, title: str) -> dict:
    """One statistic per matrix, learned / at init / random, averaged over each group's runs."""

    def cell(members, name):
        ms = [m for r in members if (m := _matrices(r).get(name))]
        if not ms:
            return "–"
        learned, init, rnd = (_mean([m.stat(key, null) for m in ms]) for null in (None, "init", "random"))
        return f"{fmt(learned)} / {fmt(init)} / {fmt(rnd)}"

    out = per_matrix_rows(runs, cell)
    k = next((r["similarity"].top_k for r in runs if r.get("similarity")), "K")
    return {
        "title": title.replace("K", str(k)),
        "note": "learned / at initialisation (step-0 snapshot) / random matrix of the same shape and row norms, "
        "over the tokens each matrix keeps (seen at least min_count times); mean over the group's runs.",
        "header": ["direction", "tying", *MATRIX_NAMES],
        "rows": out,
    }


GEOMETRY = {
    "effective_rank": "effective rank",
    "mean_pair_cosine": "anisotropy (mean cosine of all pairs)",
    "top1_share": "share of the largest singular direction",
    "norm_count_spearman": "Spearman ρ of row norm and token count",
}


def geometry_table(runs: list[dict], key: str) -> dict | None:
    """One geometry statistic per matrix at the last snapshot, learned / at init / random, mean over the
    group's runs (from each run's trajectory.json; None when no run has one)."""
    if not any(r.get("trajectory") for r in runs):
        return None

    def cell(members, name):
        ts = [t for r in members if (t := r.get("trajectory")) and name in t["snapshots"][-1]["matrices"]]
        if not ts:
            return "–"
        learned = _mean([t["snapshots"][-1]["matrices"][name].get(key) for t in ts])
        init, rnd = (_mean([t["nulls"][name][which].get(key) for t in ts]) for which in ("init", "random"))
        return f"{fmt(learned)} / {fmt(init)} / {fmt(rnd)}"

    return {
        "title": f"Geometry at the last snapshot: {GEOMETRY[key]}",
        "note": "learned / at initialisation / random matrix of the same shape and row norms, over the tokens each "
        "matrix keeps; mean over the group's runs (`tiedtransformer analyze RUN` writes each run's "
        f"{RunDir.TRAJECTORY}).",
        "header": ["direction", "tying", *MATRIX_NAMES],
        "rows": per_matrix_rows(runs, cell),
    }


def jaccard_table(runs: list[dict], kind: str = "top_pairs") -> dict:
    """The 4×4 Jaccard matrix of top pairs (``kind`` ``top_pairs``) or of each token's k nearest neighbours
    (``knn``, mean over tokens) per group (mean over its runs), with its chance level."""
    out, chance = [], []
    for (direction, tying), members in groups(runs).items():
        sims = [r["similarity"] for r in members if r.get("similarity") and r["similarity"].jaccard(kind)]
        for a in MATRIX_NAMES:
            cells = [fmt(_mean([s.jaccard(kind).get(a, {}).get(b) for s in sims]), 2) for b in MATRIX_NAMES]
            out.append([direction, tying, a, *cells])
        chance += [c[a][b] for s in sims if (c := s.chance(kind)) for a in c for b in c[a]]
    sim = next((r["similarity"] for r in runs if r.get("similarity")), schema.DumpAnalysis())
    what = f"top-{sim.top_k or 'K'} pairs" if kind == "top_pairs" else f"{sim.knn_k or 'k'} nearest neighbours"
    return {
        "title": f"Jaccard overlap of the {what} between matrices",
        "note": (
            "Mean over each group's runs"
            + ("" if kind == "top_pairs" else " and over the tokens both matrices keep")
            + f". Chance level (unrelated matrices): at most {fmt(max(chance), 5)}."
        )
        if chance
        else "No analyses.",
        "header": ["direction", "tying", "matrix", *MATRIX_NAMES],
        "rows": out,
    }


def between_table(runs: list[dict]) -> dict:
    """Linear CKA and the orthogonal-Procrustes residual between the four matrices of a run at its last snapshot
    (``trajectory.json``), mean over each group's runs, with their chance levels (unrelated matrices)."""
    names = [f"{a}|{b}" for i, a in enumerate(MATRIX_NAMES) for b in MATRIX_NAMES[i + 1 :]]
    out = []
    for (direction, tying), members in groups(runs).items():
        last = [
            snaps[-1].get("pairs") or {} for r in members if (snaps := (r.get("trajectory") or {}).get("snapshots"))
        ]
        row = [direction, tying]
        for name in names:
            vals = {k: _mean([p[name].get(k) for p in last if name in p]) for k in _BETWEEN}
            row.append(
                "–"
                if vals["cka"] is None
                else f"{fmt(vals['cka'], 2)} / {fmt(vals['procrustes'], 2)} "
                f"(chance {fmt(vals['cka_chance'], 2)} / {fmt(vals['procrustes_chance'], 2)})"
            )
        out.append(row)
    return {
        "title": "Between the matrices of a run: linear CKA / orthogonal-Procrustes residual",
        "note": "At the last snapshot, over the tokens both matrices keep, mean over the group's runs; in brackets "
        "the same with one matrix's rows shuffled (the tokens' correspondence broken). CKA 1 and residual 0: one "
        "matrix is a rotation and scaling of the other (a tied pair); the residual is of the column-centred "
        "matrices scaled to unit norm, in [0, 2].",
        "header": ["direction", "tying", *(n.replace("|", " ~ ") for n in names)],
        "rows": out,
    }


_BETWEEN = ("cka", "procrustes", "cka_chance", "procrustes_chance")


def intrinsic_table(runs: list[dict]) -> dict:
    def cell(members, name):
        vals = [(r["similarity"].intrinsic or {}).get(name) for r in members if r.get("similarity")]
        vals = [v for v in vals if isinstance(v, dict)]
        sl = _mean([v["simlex999"]["spearman"] for v in vals])
        ws = _mean([v["wordsim353"]["spearman"] for v in vals])
        rnd = [v["random"] for v in vals if isinstance(v.get("random"), dict)]
        null = ""
        if rnd:
            null = f" (random {fmt(_mean([x['simlex999'] for x in rnd]), 2)} / {fmt(_mean([x['wordsim353'] for x in rnd]), 2)})"
        return "–" if not vals else f"{fmt(sl, 2)} / {fmt(ws, 2)}{null}"

    out = per_matrix_rows(runs, cell)
    return {
        "title": "Human word similarity: SimLex-999 ρ / WordSim-353 ρ",
        "note": "Spearman ρ of cosine (a word is the mean of its pieces' rows) with human ratings, English rows "
        "only; mean over the group's runs; in brackets the same of random matrices of its shape (the mean of 20 draws). "
        "– : the matrix has no English rows, or gensim is not installed.",
        "header": ["direction", "tying", *MATRIX_NAMES],
        "rows": out,
    }


def settled_table(runs: list[dict]) -> dict:
    """Jaccard of each matrix's top pairs with the previous snapshot, at the middle snapshot of training and at
    the last (1: the structure stopped moving)."""
    gaps: set[tuple[int, int, int, int]] = set()

    def cell(members, name):
        middle, last = [], []
        for r in members:
            if series := settled_series(r, name):
                mid = series[(len(series) - 1) // 2]
                middle.append(mid[2])
                last.append(series[-1][2])
                gaps.add((mid[1], mid[0], series[-1][1], series[-1][0]))
        return f"{fmt(_mean(middle), 2)} / {fmt(_mean(last), 2)}" if last else "–"

    out = per_matrix_rows(runs, cell)
    note = (
        "Jaccard of each matrix's top pairs with the previous snapshot's: at the middle snapshot of training / at "
        "the last (mean over the group's runs; 1: the top pairs stopped changing; the step-0 snapshot is not "
        "counted)."
    )
    if len(gaps) == 1:
        ((a, b, c, d),) = gaps
        note += (
            f" Snapshots compared: step {a} with {b}, and step {c} with {d}. Where the learning rate decays to zero at "
            "the end, the weights move little between the last two snapshots whatever their structure: compare "
            "the last column across matrices and modes rather than with the middle one."
        )
    elif gaps:
        note += " The runs' snapshots fall at different steps."
    if all(c == "–" for row in out for c in row[2:]):
        note += (
            " Empty here: no run has two snapshots after step 0 (neither dumps with their top pairs nor the "
            "embedding callback's settled values in its metrics)."
        )
    return {
        "title": "How settled each matrix is",
        "note": note,
        "header": ["direction", "tying", *MATRIX_NAMES],
        "rows": out,
    }


def top_pairs_table(runs: list[dict]) -> dict:
    out = []
    for (direction, tying), members in groups(runs).items():
        first = min(members, key=lambda r: (r["seed"] is None, r["seed"] or 0, r["name"]))
        for name, m in _matrices(first).items():
            if m.identical_to:
                continue
            shown = ", ".join(f"{a}~{b} {s:.2f}" for a, b, s in m.top_pairs[:SHOWN_PAIRS])
            out.append([direction, tying, name, first.get("label") or first["name"], shown])
    return {
        "title": "Most similar pairs per matrix",
        "note": "Of one run per group (the lowest seed); a matrix tied to an earlier one is not repeated.",
        "header": ["direction", "tying", "matrix", "run", "top pairs (cosine)"],
        "rows": out,
    }


def seed_tables(runs: list[dict], rows: list[dict]) -> list[dict]:
    return [
        cost_table(runs, rows),
        *(
            similarity_table(runs, s.key, f"{s.label[0].upper()}{s.label[1:]}, against its nulls")
            for s in schema.STATISTICS
        ),
        *(t for key in GEOMETRY if (t := geometry_table(runs, key))),
        jaccard_table(runs),
        jaccard_table(runs, "knn"),
        between_table(runs),
        intrinsic_table(runs),
        settled_table(runs),
        top_pairs_table(runs),
    ]


def geometry_rows(runs: list[dict]) -> list[dict]:
    """Per (direction, tying, matrix, statistic): the statistic at the last snapshot per seed, its nulls (step 0,
    random) per seed, and whether it differs from both by more than the spread across seeds (the rule, in the
    direction of the difference from step 0)."""
    out = []
    for (direction, tying), members in groups(runs).items():
        ts = [r["trajectory"] for r in members if r.get("trajectory")]
        for name in MATRIX_NAMES:
            for key in GEOMETRY:
                learned = defined_values(ts, lambda t, x=name, k=key: t["snapshots"][-1]["matrices"][x][k])
                init = defined_values(ts, lambda t, x=name, k=key: t["nulls"][x]["init"][k])
                rand = defined_values(ts, lambda t, x=name, k=key: t["nulls"][x]["random"][k])
                if not learned or len(init) != len(learned) or len(rand) != len(learned):
                    continue
                sign = 1 if mean(learned) >= mean(init) else -1
                out.append(
                    {
                        "direction": direction,
                        "tying": tying,
                        "matrix": name,
                        "statistic": key,
                        "learned": learned,
                        "init": init,
                        "random": rand,
                        "verdict": verdict(learned, {"init": init, "random": rand}, sign),
                    }
                )
    return out


def pair_rows(runs: list[dict]) -> list[dict]:
    """Per (direction, tying, pair of matrices of one run): linear CKA and the Procrustes residual at the last
    snapshot and at step 0 per seed, with their chance levels."""
    out = []
    for (direction, tying), members in groups(runs).items():
        ts = [r["trajectory"] for r in members if r.get("trajectory")]
        if not ts:
            continue
        for pair in ts[0]["snapshots"][-1]["pairs"]:
            row = {"direction": direction, "tying": tying, "pair": pair}
            for key in ("cka", "cka_chance", "procrustes", "procrustes_chance"):
                row[key] = defined_values(ts, lambda t, k=key: t["snapshots"][-1]["pairs"][pair][k])
                row[key + "_step0"] = defined_values(ts, lambda t, k=key: t["snapshots"][0]["pairs"][pair][k])
            out.append(row)
    return out
