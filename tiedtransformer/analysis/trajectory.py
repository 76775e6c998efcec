"""The geometry of a run's token matrices over training: :mod:`~tiedtransformer.analysis.geometry`'s statistics at
every snapshot of a run (step 0, every N steps, the end), each beside its nulls (the step-0 matrix, and a random
matrix of the same shape and row norms), how far each matrix moved from step 0 by frequency band, and CKA /
Procrustes between the run's four matrices with their chance levels. One small JSON per run
(:attr:`RunDir.trajectory`), so that the results page needs no dumps."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import torch

from tiedtransformer.analysis.cross import MEASURES, common_tokens, compare_matrices, rows_of
from tiedtransformer.analysis.dumps import MATRIX_NAMES, EmbeddingDump, read_dump
from tiedtransformer.analysis.geometry import by_band, displacement, matrix_statistics, pair_statistics
from tiedtransformer.analysis.matrices import frequency_bands, kept_rows
from tiedtransformer.analysis.options import AnalysisOptions
from tiedtransformer.analysis.similarity import random_like
from tiedtransformer.atomic import atomic_write_json
from tiedtransformer.run.files import RunDir


def _rows(dump: EmbeddingDump, name: str, min_count: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The matrix's ordinary rows (see :func:`kept_rows`) and their training counts (None if unknown)."""
    keep = kept_rows(dump, name, min_count)
    counts = (dump.counts or {}).get(dump.side(name))
    w = dump.matrices[name].float()[keep]
    return w, (torch.tensor(counts)[keep] if counts else None)


def snapshot_statistics(dump: EmbeddingDump, init: EmbeddingDump, min_count: int, seed: int = 0) -> dict:
    """One snapshot: per matrix its statistics and displacement from ``init`` by band; per pair of matrices
    CKA and Procrustes with chance levels."""
    out: dict = {"step": int(dump.meta.get("step") or 0), "matrices": {}, "pairs": {}}
    rows = {name: _rows(dump, name, min_count) for name in MATRIX_NAMES if name in dump.matrices}
    for name, (w, counts) in rows.items():
        w0, _ = _rows(init, name, min_count)
        moved = displacement(w, w0)
        bands = by_band(moved, counts, frequency_bands(min_count)) if counts is not None else None
        out["matrices"][name] = {
            **matrix_statistics(w, counts),
            "displacement": float(moved.mean()),
            "displacement_by_band": bands,
        }
    for a, b in combinations(rows, 2):
        if dump.tokens(a) == dump.tokens(b):  # rows are the same tokens (one side, or a joint vocabulary)
            both = _common(kept_rows(dump, a, min_count), kept_rows(dump, b, min_count))
            out["pairs"][f"{a}|{b}"] = pair_statistics(
                dump.matrices[a].float()[both], dump.matrices[b].float()[both], seed
            )
    return out


def _common(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Row indices in both (each sorted)."""
    return x[torch.isin(x, y)]


def nulls(init: EmbeddingDump, min_count: int, seed: int = 0) -> dict:
    """Per matrix, the statistics at initialisation and of a random matrix of the same shape and row norms."""
    out = {}
    for name in MATRIX_NAMES:
        if name in init.matrices:
            w0, counts = _rows(init, name, min_count)
            out[name] = {
                "init": matrix_statistics(w0, counts),
                "random": matrix_statistics(random_like(w0, seed), counts),
            }
    return out


def geometry_scalars(snapshot: dict, null: dict) -> dict[str, float]:
    """Dashboard scalars of one snapshot (:func:`snapshot_statistics`) with its nulls (:func:`nulls`):
    ``emb/<name>/<statistic>`` beside ``..._init`` and ``..._random``; ``emb/cka/<a>~<b>`` and
    ``emb/procrustes/<a>~<b>`` beside their ``..._chance``."""
    out = {}
    for name, stats in snapshot["matrices"].items():
        for key, value in stats.items():
            if isinstance(value, float | int):
                out[f"emb/{name}/{key}"] = float(value)
                for which, null_stats in null.get(name, {}).items():
                    if null_stats.get(key) is not None:
                        out[f"emb/{name}/{key}_{which}"] = float(null_stats[key])
    for pair, stats in snapshot["pairs"].items():
        a, b = pair.split("|")
        for key, value in stats.items():
            measure, _, chance = key.partition("_")
            out[f"emb/{measure}/{a}~{b}" + (f"_{chance}" if chance else "")] = value
    return out


def run_trajectory(run_dir: str | Path, min_count: int = 10, seed: int = 0) -> dict:
    """Every snapshot of the run against its step-0 snapshot; written to :attr:`RunDir.trajectory`."""
    run = RunDir(run_dir)
    dumps = run.dumps()
    if not dumps or dumps[0] != run.snapshot(0):
        raise FileNotFoundError(f"{run.path}: no step-0 snapshot ({run.snapshot(0)}), the null of every statistic")
    init = read_dump(dumps[0])
    report = {
        "run": run.name,
        "min_count": min_count,
        "nulls": nulls(init, min_count, seed),
        "snapshots": [
            snapshot_statistics(init if d == dumps[0] else read_dump(d), init, min_count, seed) for d in dumps
        ],
    }
    atomic_write_json(run.trajectory, report)
    return report


def cross_trajectory(
    run_a: str | Path,
    name_a: str,
    run_b: str | Path,
    names_b: tuple[str, ...],
    min_count: int = 10,
    seed: int = 0,
    options: AnalysisOptions | None = None,
    pairs: int = 100_000,
) -> list[dict]:
    """Press & Wolf's claim as dynamics: at every step both runs have a snapshot of, run A's matrix ``name_a``
    against each of run B's ``names_b`` (e.g. a decoder-tied run's matrix against an untied run's ``dec_lut``
    and ``dec_embed``), by token text: linear CKA and the orthogonal-Procrustes residual, and the measures of
    :func:`~tiedtransformer.analysis.cross.compare_matrices` (Jaccard of the top-K pair sets, k-NN Jaccard,
    Spearman of cosines; ``options``' top K and k), each beside its chance level. Runs of one seed start from
    the same random matrices, so pairs of runs of different seeds are the ones that tell."""
    options = options or AnalysisOptions(min_count=min_count)  # its min_count decides which tokens are compared
    a_dumps = {int(p.name.split("-")[1]): p for p in RunDir(run_a).dumps()}
    b_dumps = {int(p.name.split("-")[1]): p for p in RunDir(run_b).dumps()}
    out = []
    for step in sorted(a_dumps.keys() & b_dumps.keys()):
        a, b = read_dump(a_dumps[step]), read_dump(b_dumps[step])
        row, cache = {"step": step}, {}  # A's matrix is analysed once per step and token set, not per B matrix
        for name_b in names_b:
            tokens = common_tokens(a, name_a, b, name_b, options.min_count)
            x = a.matrices[name_a].float()[rows_of(a, name_a, tokens)]
            y = b.matrices[name_b].float()[rows_of(b, name_b, tokens)]
            measures = compare_matrices(x, y, tokens, options, pairs, cache, (("A", name_a), ("B", name_b)))
            row[name_b] = (
                pair_statistics(x, y, seed)
                | {m: measures[m] for m in MEASURES}
                | {f"{m}_chance": measures["chance"][m] for m in MEASURES}
                | {"tokens": len(tokens)}
            )
        out.append(row)
    return out


def learned_minus_null(
    trajectories: list[dict], matrix: str, key: str, null: str | None = "init"
) -> tuple[list[int], list[float], list[float]]:
    """Over training, a statistic of one matrix minus its null, across runs (seeds): the snapshot steps all
    runs have, the mean over runs and the sample standard deviation (0 for one run). ``null=None``: the
    statistic itself (a displacement, whose null is 0)."""
    per_run = []
    for t in trajectories:
        base = t["nulls"][matrix][null][key] if null else 0.0
        per_run.append(
            {s["step"]: s["matrices"][matrix][key] - base for s in t["snapshots"] if matrix in s["matrices"]}
        )
    steps = sorted(set.intersection(*(set(r) for r in per_run))) if per_run else []
    means, sds = [], []
    for step in steps:
        xs = torch.tensor([r[step] for r in per_run], dtype=torch.float64)
        means.append(float(xs.mean()))
        sds.append(float(xs.std()) if len(xs) > 1 else 0.0)
    return steps, means, sds
