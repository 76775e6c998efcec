"""Two helpers every table of the analysis uses: a number read from JSON or CSV, and a number shown."""

from __future__ import annotations


def number(x) -> float | None:
    """``x`` as a float, or None where it is missing or not a number (``""``, None, ``"nan"`` stays nan)."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def fmt(x: float | None, digits: int = 3) -> str:
    """``x`` with ``digits`` decimals (a value that rounds to zero without its sign: "0.000", not "-0.000"), or
    an en dash where it is missing."""
    if x is None:
        return "–"
    text = f"{x:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def signed(x: float | None, digits: int) -> str:
    """A difference with its sign (``+0.12``, ``-17.5``); one that rounds to zero without one."""
    return "–" if x is None else fmt(x, digits) if abs(x) < 0.5 * 10**-digits else f"{x:+.{digits}f}"
