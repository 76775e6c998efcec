"""The seed experiment's findings, each checked by :func:`~tiedtransformer.analysis.verdict.verdict`: a
statistic per independent unit (a seed, or a pair of runs), its nulls per unit, and the direction the seed
(or Press & Wolf) reported. Pure functions of runs loaded by :func:`tiedtransformer.analysis.compare.load_run`
(their ``summary``, the last snapshot's ``similarity`` report and ``trajectory``) and of cross-run trajectories
(:func:`tiedtransformer.analysis.trajectory.cross_trajectory`); ``docs/make_results.py`` writes them out.

A finding's ``claim`` is what the source reported; ``measure`` says what is computed here and against which
nulls, before any number; ``detail`` gives the numbers per unit."""

from __future__ import annotations

from dataclasses import dataclass

from tiedtransformer.analysis.dumps import MATRIX_NAMES
from tiedtransformer.analysis.matrices import KIND_PAIRS
from tiedtransformer.analysis.numbers import fmt
from tiedtransformer.analysis.seed_tables import defined_values as _values
from tiedtransformer.analysis.seed_tables import groups
from tiedtransformer.analysis.verdict import Verdict, verdict


@dataclass(frozen=True)
class Finding:
    key: str
    claim: str
    measure: str
    result: Verdict
    detail: str


def _m(run: dict, name: str) -> dict:
    return (((run.get("similarity") or {}).get("matrices")) or {}).get(name) or {}


def _null(run: dict, name: str, which: str) -> dict:
    return (_m(run, name).get("nulls") or {}).get(which) or {}


def _series(xs: list[float], d: int = 3) -> str:
    return ", ".join(fmt(x, d) if abs(x) >= 10**-d or x == 0 else f"{x:.1e}" for x in xs)


def _complete(runs: list[dict], fns: dict) -> tuple[dict[str, list[float]], int]:
    """The units where every one of ``fns`` is defined, so that the learned values and the nulls are the
    same runs."""
    keep = [r for r in runs if all(len(_values([r], fn)) == 1 for fn in fns.values())]
    return {k: _values(keep, fn) for k, fn in fns.items()}, len(keep)


def _rule(learned, nulls: dict, direction: int, resolution: float = 0.0) -> Verdict | None:
    if not learned or any(len(v) != len(learned) for v in nulls.values()):
        return None
    return verdict(learned, nulls, direction, resolution)


def _one_pair(runs: list[dict]) -> float:
    """The Jaccard of two top-K sets that differ by one shared pair: the resolution of the overlap."""
    k = (runs[0].get("similarity") or {}).get("top_k", 1000) if runs else 1000
    return 1 / (2 * k - 1)


def untied(runs: list[dict], direction: str | None = None) -> list[dict]:
    return [
        r
        for (d, t), ms in groups(runs).items()
        if t == "none" and (direction is None or d == direction)
        for r in ms
        if r.get("similarity")
    ]


def structure_learned(runs: list[dict], direction: str) -> list[Finding]:
    """Finding 0: which untied matrices learned structure at all (mean top-K cosine against its nulls)."""
    out = []
    for name in MATRIX_NAMES:
        vals, n = _complete(
            untied(runs, direction),
            {
                "learned": lambda r, x=name: _m(r, x)["mean_top"],
                "init": lambda r, x=name: _null(r, x, "init")["mean_top"],
                "random": lambda r, x=name: _null(r, x, "random")["mean_top"],
            },
        )
        v = _rule(vals["learned"], {"init": vals["init"], "random": vals["random"]}, +1)
        if v:
            out.append(
                Finding(
                    f"0-{direction}-{name}",
                    f"`{name}` has learned pairs of similar tokens",
                    f"mean cosine of its top-{(runs[0].get('similarity') or {}).get('top_k', 1000)} pairs, "
                    "untied runs, against the same at step 0 and for a random matrix; a unit is a run",
                    v,
                    f"learned {_series(vals['learned'])}; init {_series(vals['init'])}; random "
                    f"{_series(vals['random'])} ({n} runs)",
                )
            )
    return out


def _jaccard(r: dict, a: str, b: str) -> float:
    return r["similarity"]["jaccard_top_pairs"][a][b]


def _chance(r: dict, a: str, b: str) -> float:
    return r["similarity"]["chance_jaccard_top_pairs"][a][b]


def jaccard_findings(runs: list[dict], direction: str) -> list[Finding]:
    """Finding 1: ``enc_embed`` and ``dec_embed`` share top pairs (seed 0.16); ``dec_lut`` shares none with any
    other matrix (seed 0); ``dec_lut``'s bottom similarities are higher than the others'."""
    us = untied(runs, direction)
    out = []
    vals, n = _complete(
        us,
        {
            "learned": lambda r: _jaccard(r, "enc_embed", "dec_embed"),
            "chance": lambda r: _chance(r, "enc_embed", "dec_embed"),
        },
    )
    if v := _rule(vals["learned"], {"chance": vals["chance"]}, +1, _one_pair(us)):
        out.append(
            Finding(
                f"1a-{direction}",
                "`enc_embed` and `dec_embed` share top pairs (Jaccard 0.16)",
                "Jaccard of the two matrices' top pairs (by token text), untied runs, against its chance level (two "
                "random matrices over the tokens each keeps; in a joint vocabulary the two input matrices keep the "
                "source side's and the target side's tokens, so only pairs of tokens common to both can be shared)",
                v,
                f"Jaccard {_series(vals['learned'])}; chance {_series(vals['chance'], 4)} ({n} runs)",
            )
        )
    others = [x for x in MATRIX_NAMES if x != "dec_lut"]
    vals, n = _complete(
        us,
        {
            "learned": lambda r: max(_jaccard(r, "dec_lut", x) for x in others),
            "chance": lambda r: max(_chance(r, "dec_lut", x) for x in others),
        },
    )
    if v := _rule(vals["learned"], {"chance": vals["chance"]}, -1, _one_pair(us)):
        out.append(
            Finding(
                f"1b-{direction}",
                "`dec_lut` shares no top pairs with the other matrices (Jaccard 0)",
                "the largest Jaccard of `dec_lut`'s top pairs with another matrix's, untied runs, against chance. "
                "A claim of no overlap cannot beat its null: it is *not reproduced* if the overlap is above chance by "
                "more than the spread, and otherwise *not testable*",
                v,
                f"largest Jaccard {_series(vals['learned'])}; chance {_series(vals['chance'], 4)} ({n} runs)",
            )
        )

    out += _lead_finding(
        us,
        f"1c-{direction}",
        "dec_lut",
        _stat("mean_bottom"),
        "`dec_lut`'s bottom similarities are higher than the other matrices'",
        "mean of `dec_lut`'s bottom-1000 cosines minus the highest such mean of the other three",
    )
    return out


def _lead_finding(
    us: list[dict], key: str, name: str, value, claim: str, measure: str, resolution: float = 0.0, digits: int = 3
) -> list[Finding]:
    """``value(run, matrix, which)`` of ``name`` minus the highest of the other matrices' (``which``: None for
    the learned matrix, else the null), against the same at step 0 and for random matrices, direction +1; the
    detail says in how many runs ``name`` leads at all."""

    def lead(r, which=None):
        return value(r, name, which) - max(value(r, x, which) for x in MATRIX_NAMES if x != name)

    vals, n = _complete(us, {"learned": lead, "init": lambda r: lead(r, "init"), "random": lambda r: lead(r, "random")})
    v = _rule(vals["learned"], {"init": vals["init"], "random": vals["random"]}, +1, resolution)
    if v is None:
        return []
    leads = sum(x > 0 for x in vals["learned"])
    detail = (
        f"learned {_series(vals['learned'], digits)}; init {_series(vals['init'], digits)}; random "
        f"{_series(vals['random'], digits)} ({n} runs; `{name}` leads in {leads} of {n}"
        + (
            ", by less than at step 0: a lead inherited from initialisation"
            if v.gaps.get("init", 0) < 0 < leads
            else ""
        )
        + ")"
    )
    measure += ", untied runs, against the same at step 0 and for random matrices"
    return [Finding(key, claim, measure, v, detail)]


def _stat(key: str):
    def value(r, x, which=None):
        return (_null(r, x, which) if which else _m(r, x))[key]

    return value


def _kind(kind: str):
    def value(r, x, which=None):
        return (_null(r, x, which) if which else _m(r, x))["kinds"][kind]

    return value


def top_and_kind_findings(runs: list[dict], direction: str) -> list[Finding]:
    """Finding 2: ``enc_lut`` has the highest mean top-K similarity; the kinds of each matrix's top pairs."""
    us = untied(runs, direction)
    out = []

    out += _lead_finding(
        us,
        f"2a-{direction}",
        "enc_lut",
        _stat("mean_top"),
        "`enc_lut` has the highest mean top-1000 similarity (0.534 against 0.29-0.33)",
        "`enc_lut`'s mean top-1000 cosine minus the highest of the other three",
    )
    for key, name, kind, claim in (
        ("2b", "enc_lut", "pieces", "`enc_lut`'s top pairs are pieces of one word, more than other matrices'"),
        ("2c", "dec_embed", "inflection", "`dec_embed`'s top pairs are inflections, more than other matrices'"),
        ("2d", "enc_embed", "other", "`enc_embed`'s top pairs are near-synonyms (here: *other*), more than others'"),
    ):
        out += _lead_finding(
            us,
            f"{key}-{direction}",
            name,
            _kind(kind),
            claim,
            f"share of *{kind}* among `{name}`'s top-100 pairs minus the highest such share of the other three "
            "(nulls: the top pairs at step 0; all pairs, which a random matrix's top pairs are drawn from)",
            1 / KIND_PAIRS,
            2,
        )
    return out


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
    SimLex-999; the English side's input embedding is ``dec_embed`` for de-en and ``enc_embed`` for en-de."""
    out = []
    direction, inp = "de-en", "dec_embed"  # only de-en has an English output embedding

    def rho(r, x):
        return r["similarity"]["intrinsic"][x]["simlex999"]["spearman"]

    def random_rho(r, x):  # random matrices of the same shape: what a matrix that learned nothing scores
        return r["similarity"]["intrinsic"][x]["random"]["simlex999"]

    def random_sd(r, x):  # how far one random matrix's ρ strays from that mean
        return r["similarity"]["intrinsic"][x]["random"].get("simlex999_sd")

    measures = {
        "learned": lambda r: rho(r, "dec_lut") - rho(r, inp),
        "random": lambda r: random_rho(r, "dec_lut") - random_rho(r, inp),
    }
    vals, n = _complete(untied(runs, direction), measures)
    against = (
        "the same difference of random matrices of their shapes (the mean of many draws per run) and no "
        "difference; the threshold is at least twice the standard error that the mean of the runs' differences "
        "would have if each matrix were random"
    )
    sds = _values(untied(runs, direction), lambda r: (random_sd(r, "dec_lut") ** 2 + random_sd(r, inp) ** 2) ** 0.5)
    if not vals["learned"]:  # analysed before the intrinsic scores had a random null: against no difference only
        vals, n = _complete(untied(runs, direction), {"learned": measures["learned"]})
        vals["random"], against = [], "no difference (the runs' analysis has no random null)"
    if vals["learned"]:
        nulls = {"no difference": [0.0] * n} | ({"random matrices": vals["random"]} if vals["random"] else {})
        numbers = f"differences {_series(vals['learned'])}"
        if vals["random"]:
            numbers += f"; random matrices {_series(vals['random'])}"
        out.append(
            Finding(
                f"5-{direction}",
                "the output embedding scores better on SimLex-999 than the input embedding (Press & Wolf)",
                f"SimLex-999 Spearman ρ of `dec_lut` (English output) minus that of `{inp}` (English input), untied "
                f"{direction} runs (only de-en has an English output embedding), against {against}",
                verdict(vals["learned"], nulls, +1, _null_resolution(sds, n)),
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


def press_wolf_dynamics(cross: list[dict]) -> list[Finding]:
    """Finding 4 (Press & Wolf): the decoder-tied matrix resembles an untied run's output embedding (``dec_lut``)
    more than its input embedding (``dec_embed``). ``cross``: one entry per pair of runs of different seeds,
    ``{"direction", "tying", "seed_a", "seed_b", "steps": cross_trajectory(...)}``; a unit is a pair of runs, at
    the last step both have, against the same difference at step 0."""
    out = []
    for direction in sorted({c["direction"] for c in cross}):
        rows = [
            c for c in cross if c["direction"] == direction and c["tying"] == "decoder" and c["seed_a"] != c["seed_b"]
        ]
        rows = independent_pairs([c for c in rows if len(c["steps"]) >= 2 and c["steps"][0]["step"] == 0])
        if not rows:
            continue

        def diff(step):
            return step["dec_lut"]["cka"] - step["dec_embed"]["cka"]

        end = [diff(c["steps"][-1]) for c in rows]
        start = [diff(c["steps"][0]) for c in rows]
        out.append(
            Finding(
                f"4-{direction}",
                f"{direction}: the decoder-tied matrix resembles the untied output embedding more than the untied input "
                "embedding (Press & Wolf)",
                "linear CKA (by token text) of a decoder-tied run's matrix with an untied run's `dec_lut` minus that with "
                "its `dec_embed`, runs of different seeds, at the last step, against the same at step 0; a unit is a "
                "pair of runs, each run in one pair only (decoder-tied seed s with the untied run of the next seed)",
                verdict(end, {"step 0": start}, +1),
                "; ".join(
                    f"decoder seed {c['seed_a']} vs untied seed {c['seed_b']}: {fmt(e)} (step 0 {fmt(s)})"
                    for c, e, s in zip(rows, end, start)
                )
                + f"; larger than at step 0 in {sum(e > s for e, s in zip(end, start))} of {len(rows)} pairs of runs",
            )
        )
    return out
