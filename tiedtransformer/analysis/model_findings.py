"""The seed experiment's findings about the models as wholes and across runs: the BLEU cost of tying (3, 6),
and Press & Wolf's claims (4: the tied matrix evolves like the output embedding, by CKA and the other measures
across runs; 5: the output embedding scores better on SimLex-999); and :func:`seed_findings`, every finding
together (those about the four matrices of a run are in :mod:`tiedtransformer.analysis.findings`)."""

from __future__ import annotations

from typing import NamedTuple

from tiedtransformer.analysis.findings import (
    Finding,
    _complete,
    _series,
    jaccard_findings,
    structure_learned,
    top_and_kind_findings,
    untied,
)
from tiedtransformer.analysis.numbers import fmt
from tiedtransformer.analysis.seed_tables import defined_values as _values
from tiedtransformer.analysis.seed_tables import groups
from tiedtransformer.analysis.verdict import verdict


def seed_findings(runs: list[dict], p_values: dict[str, float | None], cross: list[dict]) -> list[Finding]:
    """Every finding, per direction where the seed's statistic is one direction's."""
    out = []
    for direction in sorted({d for d, _ in groups(runs)}):
        out += structure_learned(runs, direction) + jaccard_findings(runs, direction)
        out += top_and_kind_findings(runs, direction)
    return out + bleu_findings(runs, p_values) + press_wolf_dynamics(cross) + simlex_findings(runs)


def paired_by_seed(runs: list[dict], direction: str, tying: str, key: str) -> list[tuple[int, float, float]]:
    """(seed, value of the tied run, value of the untied run of the same seed) for a summary key."""
    g = groups(runs)
    base = {r["seed"]: r for r in g.get((direction, "none"), [])}
    out = []
    for r in g.get((direction, tying), []):
        b = base.get(r["seed"])
        x, y = getattr(r["summary"], key), b and getattr(b["summary"], key)
        if x is not None and y is not None:
            out.append((r["seed"], float(x), float(y)))
    return sorted(out)


def bleu_findings(runs: list[dict], p_values: dict[str, float | None]) -> list[Finding]:
    """Finding 3 (the seed: sharing costs about 1.5 BLEU) and 6 (Press & Wolf: three-way tying costs nothing in
    a small model), per direction: test BLEU of the three-way-tied runs against the untied runs of the same
    seeds; ``p_values``: paired-bootstrap p of each tied run against its untied run, by run name."""
    out = []
    g = groups(runs)
    for direction in sorted({d for d, _ in g}):
        pairs = paired_by_seed(runs, direction, "three_way", "final_test_bleu")
        if not pairs:
            continue
        tied, base = [x for _, x, _ in pairs], [y for _, _, y in pairs]
        names = {r["seed"]: r["name"] for r in g.get((direction, "three_way"), [])}
        ps = [p_values.get(names[s]) for s, _, _ in pairs]
        lower = sum(p is not None and p < 0.05 and x < y for p, (_, x, y) in zip(ps, pairs))
        higher = sum(p is not None and p < 0.05 and x > y for p, (_, x, y) in zip(ps, pairs))
        detail = (
            f"seeds {', '.join(str(s) for s, _, _ in pairs)}: three-way {_series(tied, 2)}, untied {_series(base, 2)}; "
            f"difference {_series([x - y for x, y in zip(tied, base)], 2)}; significant (paired bootstrap, p < 0.05) "
            f"and lower in {lower}, and higher in {higher}, of {len(pairs)} pairs of runs"
        )
        cost = verdict(tied, {"untied": base}, -1)
        mean_diff = sum(x - y for x, y in zip(tied, base)) / len(pairs)
        out.append(
            Finding(
                f"3-{direction}",
                f"{direction}: sharing all three matrices costs BLEU (the seed: about 1.5)",
                "test BLEU of the three-way-tied runs against the untied runs, a unit per seed. The rule tests the "
                f"sign of the cost; its size is reported (mean {mean_diff:+.2f} here, the seed's -1.5), not tested",
                cost,
                detail,
            )
        )
        out.append(
            Finding(
                f"6-{direction}",
                f"{direction}: three-way tying costs no BLEU in a small model (Press & Wolf)",
                "the same numbers read the other way: *reproduced* if the tied runs are better by more than the "
                "spread, *not reproduced* if worse; a cost of exactly zero cannot be shown, only bounded (*not testable*)",
                verdict(tied, {"untied": base}, +1),
                detail,
            )
        )
    return out


def simlex_findings(runs: list[dict]) -> list[Finding]:
    """Finding 5 (Press & Wolf): the output embedding scores at least as well as the input embedding on
    SimLex-999; the English side's input embedding is ``dec_embed`` for de-en and ``enc_embed`` for en-de.
    Nulls: random matrices of the same shapes, no difference, and the same difference at step 0 where every
    run has its step-0 report (``run["similarity_init"]``)."""
    out = []
    direction, inp = "de-en", "dec_embed"  # only de-en has an English output embedding

    def rho(report, x):
        return report.intrinsic[x]["simlex999"]["spearman"]

    def random_rho(r, x):  # random matrices of the same shape: what a matrix that learned nothing scores
        return r["similarity"].intrinsic[x]["random"]["simlex999"]

    def random_sd(r, x):  # how far one random matrix's ρ strays from that mean
        return r["similarity"].intrinsic[x]["random"].get("simlex999_sd")

    def at_step0(r):  # the same difference of the run's own matrices at initialisation
        init = r.get("similarity_init")
        return None if init is None else rho(init, "dec_lut") - rho(init, inp)

    measures = {
        "learned": lambda r: rho(r["similarity"], "dec_lut") - rho(r["similarity"], inp),
        "random": lambda r: random_rho(r, "dec_lut") - random_rho(r, inp),
    }
    pool = untied(runs, direction)
    with_step0 = pool and len(_values(pool, at_step0)) == len(pool)
    vals, n = _complete(pool, measures | ({"step 0": at_step0} if with_step0 else {}))
    against = (
        "the same difference of random matrices of their shapes (the mean of many draws per run)"
        + (", the same difference at step 0 (the run's own initialisation)" if with_step0 else "")
        + " and no difference; the threshold is at least twice the standard error that the mean of the runs' "
        "differences would have if each matrix were random"
    )
    sds = _values(pool, lambda r: (random_sd(r, "dec_lut") ** 2 + random_sd(r, inp) ** 2) ** 0.5)
    if not vals["learned"]:  # analysed before the intrinsic scores had a random null: against no difference only
        vals, n = _complete(pool, {"learned": measures["learned"]})
        vals["random"], against = [], "no difference (the runs' analysis has no random null)"
    if vals["learned"]:
        nulls = {"no difference": [0.0] * n} | ({"random matrices": vals["random"]} if vals["random"] else {})
        nulls |= {"step 0": vals["step 0"]} if vals.get("step 0") else {}
        numbers = f"differences {_series(vals['learned'])}"
        if vals["random"]:
            numbers += f"; random matrices {_series(vals['random'])}"
        if vals.get("step 0"):
            numbers += f"; at step 0 {_series(vals['step 0'])}"
        out.append(
            Finding(
                f"5-{direction}",
                "the output embedding scores better on SimLex-999 than the input embedding (Press & Wolf)",
                f"SimLex-999 Spearman ρ of `dec_lut` (English output) minus that of `{inp}` (English input), untied "
                f"{direction} runs (only de-en has an English output embedding), against {against}",
                verdict(vals["learned"], nulls, +1, _null_resolution(sds, n), "twice the random null's standard error"),
                f"{numbers} ({n} runs)",
            )
        )
    return out


def _null_resolution(sds: list[float], n: int) -> float:
    """Twice the standard error of a mean of ``n`` differences drawn under the random null (``sds``: each run's
    standard deviation of one such difference); 0 where the null's spread is not known."""
    if not sds or n < 1:
        return 0.0
    return 2 * (sum(sd**2 for sd in sds) / len(sds)) ** 0.5 / n**0.5


def independent_pairs(pairs: list[dict]) -> list[dict]:
    """Pairs of runs (``seed_a``, ``seed_b``) in which no run appears twice: each ``seed_a`` with the next
    ``seed_b`` after it (cyclically) not taken yet: 1-2, 2-3, 3-1 for three seeds."""
    by = {(c["seed_a"], c["seed_b"]): c for c in pairs}
    seeds_b = sorted({b for _, b in by})
    used, out = set(), []
    for a in sorted({a for a, _ in by}):
        options = [b for b in seeds_b if b != a and b not in used and (a, b) in by]
        if options:
            b = next((x for x in options if x > a), options[0])
            used.add(b)
            out.append(by[(a, b)])
    return out


class AcrossMeasure(NamedTuple):
    key: str  # the finding's key
    label: str  # a table column's
    words: str  # in a sentence
    sign: int  # +1 where a larger value means more alike, -1 where a smaller one does


ACROSS_MEASURES = {  # the measures of cross_trajectory, by their keys there
    "cka": AcrossMeasure("4", "CKA", "linear CKA", +1),
    "procrustes": AcrossMeasure("4b", "Procrustes", "orthogonal-Procrustes residual", -1),
    "jaccard_top_pairs": AcrossMeasure("4c", "Jaccard top pairs", "Jaccard overlap of the top pairs", +1),
    "jaccard_knn": AcrossMeasure("4d", "k-NN Jaccard", "Jaccard overlap of the k nearest neighbours", +1),
    "spearman": AcrossMeasure("4e", "Spearman of cosines", "Spearman correlation of the pair cosines", +1),
}


def press_wolf_dynamics(cross: list[dict]) -> list[Finding]:
    """Finding 4 (Press & Wolf): the decoder-tied matrix resembles an untied run's output embedding (``dec_lut``)
    more than its input embedding (``dec_embed``), by every measure of :data:`ACROSS_MEASURES` that the pairs
    have (4: CKA; 4b-4e: Procrustes, Jaccard of top pairs, k-NN Jaccard, Spearman of cosines). ``cross``: one
    entry per pair of runs of different seeds, ``{"direction", "tying", "seed_a", "seed_b", "steps":
    cross_trajectory(...)}``; a unit is a pair of runs, at the last step both have, against the same difference
    at step 0 and between the two chance levels (the second matrix's rows shuffled)."""
    out = []
    for measure, (key, _, words, sign) in ACROSS_MEASURES.items():
        for direction in sorted({c["direction"] for c in cross}):
            rows = [
                c
                for c in cross
                if c["direction"] == direction
                and c["tying"] == "decoder"
                and c["seed_a"] != c["seed_b"]
                and len(c["steps"]) >= 2
                and c["steps"][0]["step"] == 0
                and all(measure in c["steps"][i][m] for i in (0, -1) for m in ("dec_lut", "dec_embed"))
            ]
            rows = independent_pairs(rows)
            if rows:
                out.append(_press_wolf_finding(f"{key}-{direction}", direction, measure, words, sign, rows))
    return out


def _press_wolf_finding(key: str, direction: str, measure: str, words: str, sign: int, rows: list[dict]) -> Finding:
    def diff(step, suffix=""):
        return step["dec_lut"][measure + suffix] - step["dec_embed"][measure + suffix]

    end = [diff(c["steps"][-1]) for c in rows]
    start = [diff(c["steps"][0]) for c in rows]
    nulls = {"step 0": start}
    if all(f"{measure}_chance" in c["steps"][-1][m] for c in rows for m in ("dec_lut", "dec_embed")):
        nulls["chance"] = [diff(c["steps"][-1], "_chance") for c in rows]
    closer = "lower" if sign < 0 else "higher"
    return Finding(
        key,
        f"{direction}: the decoder-tied matrix resembles the untied output embedding more than the untied input "
        f"embedding (Press & Wolf), by the {words}",
        f"{words} (by token text; {closer} is more alike) of a decoder-tied run's matrix with an untied run's "
        f"`dec_lut` minus that with its `dec_embed`, runs of different seeds, at the last step, against the same at "
        f"step 0{' and between the chance levels' if 'chance' in nulls else ''}; a unit is a pair of runs, each run "
        "in one pair only (decoder-tied seed s with the untied run of the next seed)",
        verdict(end, nulls, sign),
        "; ".join(
            f"decoder seed {c['seed_a']} vs untied seed {c['seed_b']}: {fmt(e)} (step 0 {fmt(s)})"
            for c, e, s in zip(rows, end, start)
        )
        + f"; {'below' if sign < 0 else 'above'} step 0 in {sum((e - s) * sign > 0 for e, s in zip(end, start))} "
        f"of {len(rows)} pairs of runs",
    )
