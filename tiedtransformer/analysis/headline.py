"""The comparison's headline: what each tying mode costs or gains, per (direction, tying) group of runs.

The BLEU it leads with (test, else the final BLEU on all of val, else the best validation BLEU), its mean
over seeds with a 95% interval, Δ parameters and Δ BLEU against the untied runs of the same direction,
and the per-seed p-values of the paired test against the untied run of the same seed. Pure functions of
loaded runs (``compare.load_run``) and the run table's rows (``compare.table``).
"""

from __future__ import annotations

from statistics import mean, stdev

from tiedtransformer.analysis.numbers import number, signed
from tiedtransformer.analysis.seed_tables import groups

# two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (beyond: an expansion, good to 1e-4)
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131]
_T975 += [2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom: a 95% interval of a mean of df + 1
    values is mean ± t975(df) · sd / sqrt(df + 1)."""
    if df < 1:
        raise ValueError("a t interval needs at least two values")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964  # beyond the table: the Cornish-Fisher expansion of t around the normal quantile
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def headline_metric(runs: list[dict]) -> tuple[str, str]:
    """(summary field, words) of the BLEU the page leads with: test BLEU where every run has one, else the
    final BLEU on all of val, else the best validation BLEU."""
    for key, words in (
        ("final_test_bleu", "test BLEU"),
        ("final_val_bleu", "final val BLEU"),
        ("best_val_bleu", "best val BLEU"),
    ):
        if runs and all(number(getattr(r["summary"], key)) is not None for r in runs):
            return key, words
    return "best_val_bleu", "best val BLEU"


def headline(runs: list[dict], rows: list[dict]) -> list[dict]:
    """Per (direction, tying) group: unique parameters, the headline BLEU's mean and 95% interval (across
    seeds: a t interval of the mean; one run with a test score: its bootstrap interval), Δ parameters (%)
    and Δ BLEU against the untied runs of the same direction, and the per-seed p-values of the paired test
    against the untied run (``significant``: every seed below 0.05)."""
    key, _ = headline_metric(runs)
    p_of = {r["directory"]: r["test_bleu_p"] for r in rows}
    out = []
    for (direction, tying), members in groups(runs).items():
        vals = [v for r in members if (v := number(getattr(r["summary"], key))) is not None]
        params = [v for r in members if (v := number(r["summary"].unique_params)) is not None]
        bleu = mean(vals) if vals else None
        interval = None
        if len(vals) >= 2:
            half = t975(len(vals) - 1) * stdev(vals) / len(vals) ** 0.5
            interval = (bleu - half, bleu + half)
        elif len(vals) == 1 and key == "final_test_bleu":
            ci = number(members[0]["summary"].final_test_bleu_ci)
            interval = None if ci is None else (bleu - ci, bleu + ci)
        ps = [p_of.get(r["name"]) for r in members]  # one per seed, None where the seed had no test
        out.append(
            {
                "direction": direction,
                "tying": tying,
                "runs": len(members),
                "params": mean(params) if params else None,
                "bleu": bleu,
                "interval": interval,
                "p": ps,
                "significant": bool(ps) and all(p is not None and p < 0.05 for p in ps),
            }
        )
    for g in out:
        base = next((b for b in out if b["direction"] == g["direction"] and b["tying"] == "none"), None)
        ok = base is not None and base["params"] and g["params"] is not None
        g["params_delta_pct"] = 100 * (g["params"] - base["params"]) / base["params"] if ok else None
        both = base is not None and None not in (g["bleu"], base["bleu"])
        g["bleu_delta"] = g["bleu"] - base["bleu"] if both else None
    return out


def headline_table(groups_: list[dict], metric: str) -> dict:
    """The cost of tying beside the headline figure: one row per group, headers in words and units."""
    rows = []
    for g in groups_:
        half = None if g["interval"] is None else (g["interval"][1] - g["interval"][0]) / 2
        bleu = "–" if g["bleu"] is None else f"{g['bleu']:.2f}" + ("" if half is None else f" ± {half:.2f}")
        rows.append(
            [
                (g["direction"], None),
                (g["tying"], None),
                (str(g["runs"]), g["runs"]),
                (signed(g["params_delta_pct"], 1), g["params_delta_pct"]),
                (bleu, g["bleu"]),
                (signed(g["bleu_delta"], 2), g["bleu_delta"]),
                _p_cell(g["p"]),
            ]
        )
    header = ["direction", "tying", "runs", "Δ params (%)", f"{metric} ± 95%", f"Δ {metric}", "p per seed"]
    return {"header": header, "rows": rows}


def _p(p: float | None) -> str:
    return "–" if p is None else "<0.01" if p < 0.01 else f"{p:.2f}"


def _p_cell(ps: list[float | None]) -> tuple[str, float | None]:
    """The p-values of a group's seeds in seed order ("–" for a seed without a test) and the smallest, to sort by."""
    known = [p for p in ps if p is not None]
    return (" / ".join(map(_p, ps)) if known else "–"), (min(known) if known else None)
