"""Statistics that tell a learned token matrix from its initialisation: how far rows moved, anisotropy and the
singular-value spectrum, row norm against token frequency, and rotation-invariant comparisons of two matrices
(linear CKA, the orthogonal Procrustes residual), each with a chance level. Pure functions of tensors.

Gao et al. 2019 (representation degeneration: tied and output embeddings drift into a narrow cone, rare
tokens most); Ethayarajh 2019 (anisotropy as the mean cosine of random pairs); Roy & Vetterli 2007 (effective
rank); Kornblith et al. 2019 (linear CKA); Schönemann 1966 (orthogonal Procrustes)."""

from __future__ import annotations

import torch

from tiedtransformer.analysis.intrinsic import spearman


def _f64(w: torch.Tensor) -> torch.Tensor:
    return w.detach().to(torch.float64)


def displacement(w: torch.Tensor, w0: torch.Tensor) -> torch.Tensor:
    """Per row, how far it moved from its initialisation, relative to where it started: ‖w_i − w0_i‖ / ‖w0_i‖
    (a row that started at zero counts as moved by its own norm)."""
    w, w0 = _f64(w), _f64(w0)
    start = w0.norm(dim=1)
    return (w - w0).norm(dim=1) / torch.where(start > 0, start, torch.ones_like(start))


def by_band(values: torch.Tensor, counts: torch.Tensor, bands: list[tuple[int, float]]) -> list[dict]:
    """Mean of ``values`` over the rows whose training count lies in each band [lo, hi)."""
    out = []
    for lo, hi in bands:
        inside = (counts >= lo) & (counts < hi)
        out.append(
            {
                "lo": lo,
                "hi": hi,
                "rows": int(inside.sum()),
                "mean": float(values[inside].mean()) if inside.any() else None,
            }
        )
    return out


def mean_pair_cosine(w: torch.Tensor) -> float:
    """Anisotropy: the mean cosine over all pairs of distinct rows, exactly, without the n² products:
    with unit rows u_i, Σ_{i≠j} u_i·u_j = ‖Σ u_i‖² − n. Zero rows are left out. Near 0 for isotropic
    rows (a random matrix: about ±1/√d), near 1 when all rows share one direction."""
    u = _f64(w)
    norms = u.norm(dim=1)
    u = u[norms > 0] / norms[norms > 0].unsqueeze(1)
    n = len(u)
    if n < 2:
        return float("nan")
    return float((u.sum(0).square().sum() - n) / (n * (n - 1)))


def singular_values(w: torch.Tensor) -> torch.Tensor:
    """Singular values of the (uncentred) matrix, largest first: a common direction of all rows, the
    degeneration Gao et al. describe, shows as one large value."""
    return torch.linalg.svdvals(_f64(w))


def top_share(s: torch.Tensor, k: int = 1) -> float:
    """Share of the matrix's energy (Σ s²) in its ``k`` largest singular directions."""
    e = s.square()
    return float(e[:k].sum() / e.sum()) if e.sum() > 0 else float("nan")


def effective_rank(s: torch.Tensor) -> float:
    """Roy & Vetterli's effective rank: exp of the entropy of the normalised singular values p = s / Σ s.
    Equals r for r equal non-zero values; 1 for a rank-one matrix."""
    p = s[s > 0] / s.sum()
    return float(torch.exp(-(p * p.log()).sum())) if len(p) else float("nan")


def norm_frequency_spearman(w: torch.Tensor, counts) -> float:
    """Spearman's ρ between row norm and the token's training count."""
    return spearman(_f64(w).norm(dim=1), torch.as_tensor(counts, dtype=torch.float64))


def _centred(x: torch.Tensor) -> torch.Tensor:
    x = _f64(x)
    return x - x.mean(0, keepdim=True)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two representations of the same n tokens (rows; widths may differ), Kornblith et al.
    2019, eq. 5: ‖Yᵀ X‖_F² / (‖Xᵀ X‖_F ‖Yᵀ Y‖_F) on column-centred matrices. 1 for matrices that differ by
    an orthogonal map and an isotropic scale; invariant to both."""
    x, y = _centred(x), _centred(y)
    denom = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return float(torch.linalg.matrix_norm(y.T @ x).square() / denom) if denom > 0 else float("nan")


def procrustes_residual(x: torch.Tensor, y: torch.Tensor) -> float:
    """What is left of ``y`` after the best orthogonal map of ``x`` onto it: both column-centred and scaled to
    unit Frobenius norm, min_R ‖X R − Y‖_F² over orthogonal R (Schönemann 1966) = 2 (1 − ‖Xᵀ Y‖_*), in [0, 2].
    0 for a rotated (and scaled) copy."""
    x, y = _centred(x), _centred(y)
    nx, ny = x.norm(), y.norm()
    if nx == 0 or ny == 0:
        return float("nan")
    nuclear = torch.linalg.svdvals((x / nx).T @ (y / ny)).sum()
    return max(0.0, float(2 * (1 - nuclear)))  # rounding can take a perfect fit a hair below 0


def shuffled_rows(y: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """``y`` with its rows in a seeded random order: the token correspondence broken, everything else kept.
    A between-matrices statistic on (x, shuffled_rows(y)) is its chance level."""
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))]


def matrix_statistics(w: torch.Tensor, counts=None, top_k: int = 1) -> dict[str, float | None]:
    """One matrix's anisotropy and spectrum, and the Spearman ρ of its row norms against token counts."""
    s = singular_values(w)
    return {
        "mean_pair_cosine": mean_pair_cosine(w),
        f"top{top_k}_share": top_share(s, top_k),
        "effective_rank": effective_rank(s),
        "norm_count_spearman": norm_frequency_spearman(w, counts) if counts is not None else None,
    }


def pair_statistics(x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """Linear CKA and the Procrustes residual of two matrices over the same tokens, each with its chance
    level (the same with ``y``'s rows shuffled)."""
    z = shuffled_rows(y, seed)
    return {
        "cka": linear_cka(x, y),
        "cka_chance": linear_cka(x, z),
        "procrustes": procrustes_residual(x, y),
        "procrustes_chance": procrustes_residual(x, z),
    }
