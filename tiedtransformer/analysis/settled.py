"""How settled a matrix is over training: the Jaccard of its top pairs between consecutive snapshots, from a
run's dumps or, for a kept copy without them, from what the embedding callback logged at each snapshot."""

from __future__ import annotations

from tiedtransformer.analysis import schema
from tiedtransformer.analysis.numbers import number
from tiedtransformer.analysis.similarity import jaccard

SETTLED = "settled_top"
"""The W&B scalar ``emb/<matrix>/settled_top<K>`` the embedding callback logs at each snapshot: the Jaccard of the
matrix's top pairs with the previous snapshot's."""
_SNAPSHOT = next(s.scalar for s in schema.STATISTICS if s.key == "mean_top").removesuffix("K")
"""A scalar every snapshot logs for every matrix (``emb/<matrix>/mean_top<K>``): the rows that are snapshots."""


def settled_series(run: dict, name: str) -> list[tuple[int, int, float]]:
    """``(step, previous step, Jaccard)`` of a matrix's top pairs between consecutive snapshots after step 0,
    oldest first: from the run's dumps where it has them, else from the ``emb/<matrix>/settled_top<K>`` values
    the embedding callback logged at each snapshot (kept in a kept copy's metrics)."""
    if steps := [(s, p[name]) for s, p in run.get("top_pairs_by_step", []) if name in p]:
        return [(b[0], a[0], jaccard(a[1], b[1])) for a, b in zip(steps, steps[1:]) if a[0] > 0]
    snapshots: list[int] = []  # the steps at which the callback analysed the matrix
    out = []
    for row in run.get("metrics", []):
        if _logged(row, f"emb/{name}/{_SNAPSHOT}") is None:
            continue
        step = int(float(row.get("step") or 0))
        value = _logged(row, f"emb/{name}/{SETTLED}")
        if value is not None and snapshots and snapshots[-1] > 1:  # the first snapshot (step 0) is not counted
            out.append((step, snapshots[-1], value))
        snapshots.append(step)
    return out


def _logged(row: dict, prefix: str) -> float | None:
    """The first number in a metrics row under a key starting with ``prefix`` (the top-K is part of the key)."""
    return next((v for k, x in row.items() if k.startswith(prefix) and (v := number(x)) is not None), None)
