"""The seed experiment's findings, each checked by :func:`~tiedtransformer.analysis.verdict.verdict`: a
statistic per independent unit (a seed, or a pair of runs), its nulls per unit, and the direction the seed
(or Press & Wolf) reported. Pure functions of runs loaded by :func:`tiedtransformer.analysis.compare.load_run`
(their ``summary``, the last snapshot's ``similarity`` report and ``trajectory``) and of cross-run trajectories
(:func:`tiedtransformer.analysis.trajectory.cross_trajectory`); ``docs/make_results.py`` writes them out.

This module: the shared parts (:class:`Finding`, the units) and the findings about the four matrices of a run
(0-2); :mod:`tiedtransformer.analysis.model_findings` has BLEU (3, 6), Press & Wolf (4, 5) and all of them
together (``seed_findings``).

A finding's ``claim`` is what the source reported; ``measure`` says what is computed here and against which
nulls, before any number; ``detail`` gives the numbers per unit."""

from __future__ import annotations

from dataclasses import dataclass

from tiedtransformer.analysis.dumps import MATRIX_NAMES
from tiedtransformer.analysis.matrices import KIND_PAIRS
from tiedtransformer.analysis.numbers import fmt
from tiedtransformer.analysis.options import TOP_K
from tiedtransformer.analysis.schema import MatrixAnalysis
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


def _m(run: dict, name: str) -> MatrixAnalysis:
    return (run["similarity"].matrices.get(name) if run.get("similarity") else None) or MatrixAnalysis()


def top_k_of(runs: list[dict]) -> int:
    """The top-K of the runs' analyses (the first that has one), else the analysis's default."""
    return next((r["similarity"].top_k for r in runs if r.get("similarity") and r["similarity"].top_k), TOP_K)


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
    k = top_k_of(runs)
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
                "learned": lambda r, x=name: _m(r, x).stat("mean_top"),
                "init": lambda r, x=name: _m(r, x).stat("mean_top", "init"),
                "random": lambda r, x=name: _m(r, x).stat("mean_top", "random"),
            },
        )
        v = _rule(vals["learned"], {"init": vals["init"], "random": vals["random"]}, +1)
        if v:
            out.append(
                Finding(
                    f"0-{direction}-{name}",
                    f"`{name}` has learned pairs of similar tokens",
                    f"mean cosine of its top-{top_k_of(runs)} pairs, "
                    "untied runs, against the same at step 0 and for a random matrix; a unit is a run",
                    v,
                    f"learned {_series(vals['learned'])}; init {_series(vals['init'])}; random "
                    f"{_series(vals['random'])} ({n} runs)",
                )
            )
    return out


def _jaccard(r: dict, a: str, b: str) -> float:
    return r["similarity"].jaccard_top_pairs[a][b]


def _chance(r: dict, a: str, b: str) -> float:
    return r["similarity"].chance_jaccard_top_pairs[a][b]


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
        return _m(r, x).stat(key, which)

    return value


def _kind(kind: str):
    def value(r, x, which=None):
        m = _m(r, x)
        return (m.nulls[which]["kinds"] if which else m.kinds)[kind]

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
