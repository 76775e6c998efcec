"""Whether padding the fused loss's rows changes its fp32 results: for every row count 1..N, the loss and
its gradients with the rows padded to ``loss.ROW_MULTIPLE`` against unpadded (``row_multiple=1``), and the
default outside autocast (which pads nothing) against unpadded, compared to the last bit. Random rows and
a weight of the seed experiment's shape (V 6000, d 192) unless told otherwise.

    python -m benchmarks.loss_rounding
    python -m benchmarks.loss_rounding --rows 1100 --vocab 6000 --dim 192

One JSON line: the row counts at which each comparison differs, as ranges [first, last]. The padding of
issue 32 added zero rows after the real ones; the weight gradient sums over the rows, and the matrix
product's blocking of that sum follows the row count, so its rounding can change (docs/runs.md).
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.harness import emit
from tiedtransformer.model.loss import ROW_MULTIPLE, linear_label_smoothed_nll


def results(hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor, row_multiple: int | None):
    """The loss, the gradient of the rows and the gradient of the weight, fp32, no autocast."""
    h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    loss = linear_label_smoothed_nll(h, w, target, 0.1, row_multiple=row_multiple)[0]
    loss.backward()
    return loss.detach(), h.grad, w.grad


def ranges(values: list[int]) -> list[list[int]]:
    """Sorted integers as runs of consecutive ones: [[first, last], ...]."""
    out: list[list[int]] = []
    for v in values:
        if out and v == out[-1][1] + 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return out


def differing(rows: int, vocab: int, dim: int, seed: int = 0) -> dict[str, list[int]]:
    """Row counts 1..rows at which padded (and the default) results differ from unpadded ones, bit for bit."""
    torch.manual_seed(seed)
    weight = torch.randn(vocab, dim) * 0.05
    out: dict[str, list[int]] = {"padded": [], "default": []}
    for n in range(1, rows + 1):
        hidden, target = torch.randn(1, n, dim), torch.randint(4, vocab, (1, n))
        plain = results(hidden, weight, target, 1)
        for name, multiple in (("padded", ROW_MULTIPLE), ("default", None)):
            if not all(torch.equal(a, b) for a, b in zip(plain, results(hidden, weight, target, multiple))):
                out[name].append(n)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1100)
    ap.add_argument("--vocab", type=int, default=6000)
    ap.add_argument("--dim", type=int, default=192)
    args = ap.parse_args()
    found = differing(args.rows, args.vocab, args.dim)
    emit(
        "loss_rounding",
        {
            "rows": [1, args.rows],
            "differ_padded": ranges(found["padded"]),
            "differ_default": ranges(found["default"]),
            "row_multiple": ROW_MULTIPLE,
        },
        vocab=args.vocab,
        dim=args.dim,
    )


if __name__ == "__main__":
    main()
