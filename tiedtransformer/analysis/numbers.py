"""Two helpers every table of the analysis uses: a number read from JSON or CSV, and a number shown."""

from __future__ import annotations


def number(x) -> float | None:
    """``x`` as a float, or None where it is missing or not a number (``""``, None, ``"nan"`` stays nan)."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def fmt(x: float | None, digits: int = 3) -> str:
    """``x`` with ``digits`` decimals, or an en dash where it is missing."""
    return "–" if x is None else f"{x:.{digits}f}"
