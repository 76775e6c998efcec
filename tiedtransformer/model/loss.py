"""The training objective, label-smoothed cross-entropy, as pure functions (the fused output layer
of :meth:`TiedTransformer.loss <tiedtransformer.model.network.TiedTransformer.loss>` included)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tiedtransformer.specials import PAD_ID

ROW_MULTIPLE = 64
"""When its products run in 16 bits (autocast, or bf16/fp16 weights) the fused loss pads its rows (the
non-pad target tokens of a batch) to a multiple of this. The token count differs in nearly every batch, and
under CPU bf16 autocast each new row count made oneDNN build and cache new matrix-product kernels, and the
main process grew epoch after epoch (``benchmarks/soak.py``). With 64 the products see a few dozen shapes,
at the cost of fewer than 64 zero rows per batch in the output layer. fp32 rows are not padded: the padding
changed their rounding for some row counts (the weight gradient sums over the rows;
``benchmarks/loss_rounding.py``), so fp32 runs made before the padding could no longer be rerun to the
last bit."""


def label_smoothed_nll(
    logits: torch.Tensor, target: torch.Tensor, epsilon: float, ignore_index: int = PAD_ID
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed label-smoothed cross-entropy, summed plain NLL and the count of non-pad target tokens.

    Smoothing spreads ε uniformly over the whole vocabulary (as ``F.cross_entropy(label_smoothing=ε)``
    and Szegedy et al. 2016); the plain NLL is what perplexity is made of.
    """
    lprobs = F.log_softmax(logits.float(), dim=-1).view(-1, logits.size(-1))  # (N, V)
    target = target.reshape(-1)
    keep = target != ignore_index
    # Per-row terms masked afterwards: selecting the kept rows first would copy the (N, V) matrix.
    nll_rows = -lprobs.gather(1, target.clamp(min=0)[:, None]).squeeze(1)  # (N,)
    smooth_rows = -lprobs.mean(dim=-1)  # (N,)
    nll = (nll_rows * keep).sum()
    smooth = (smooth_rows * keep).sum()
    return (1.0 - epsilon) * nll + epsilon * smooth, nll, keep.sum()


def linear_label_smoothed_nll(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    epsilon: float,
    ignore_index: int = PAD_ID,
    chunk_elements: int = 2**26,
    row_multiple: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`label_smoothed_nll` of ``logits = hidden @ weight.T``, without the (N, V) logits.

    Same results as ``label_smoothed_nll(hidden @ weight.T, target, epsilon)`` (hidden (..., d),
    weight (V, d), target (...)), but padding rows are dropped before the output layer, and the
    logits exist one chunk of about ``chunk_elements`` at a time: each chunk's gradient with respect
    to the logits (softmax minus the smoothed target) is formed at once and turned into the
    gradients of ``hidden`` and ``weight`` during the forward pass, so the backward pass only scales
    them. Only the loss carries a gradient; the NLL is for logging (as perplexity).

    Chunks are large by default because each adds one pass over the (V, d) weight gradient, and small
    chunks ran much slower (``python -m benchmarks.train_step`` times the fused and the whole-logits
    loss). A batch of 4096 rows and V 37000 is 3 chunks of < 2^26 logits.

    The kept rows are padded with zero rows to a multiple of ``row_multiple`` and the chunks are
    multiples of it too, so that the matrix products see a few shapes, not one per count of target
    tokens; padded rows add nothing to the sums or the gradients. ``None``: ``ROW_MULTIPLE`` when the
    products run in 16 bits (autocast on the rows' device, or bf16/fp16 weights), 1 (no padding) in fp32.
    """
    if row_multiple is None:
        low = torch.is_autocast_enabled(hidden.device.type) or weight.dtype in (torch.bfloat16, torch.float16)
        row_multiple = ROW_MULTIPLE if low else 1
    target = target.reshape(-1)
    keep = target != ignore_index
    rows = hidden.reshape(-1, hidden.size(-1))[keep]  # (n, d)
    target = target[keep]
    n = rows.size(0)
    padded = -(-n // row_multiple) * row_multiple
    if padded != n:
        rows = torch.cat([rows, rows.new_zeros(padded - n, rows.size(1))])
        target = torch.cat([target, target.new_zeros(padded - n)])
    chunk = max(row_multiple, chunk_elements // weight.size(0) // row_multiple * row_multiple)
    if torch.is_grad_enabled() and (rows.requires_grad or weight.requires_grad):
        loss, nll = _LinearLabelSmoothedNLL.apply(rows, weight, target, epsilon, chunk, n)
        # the padded rows' gradients are zero and dropped by torch.cat's backward
    else:
        loss, nll, _, _ = _linear_ls_nll(rows, weight, target, epsilon, chunk, n, with_grads=False)
    return loss, nll, keep.sum()


def _linear_ls_nll(rows, weight, target, epsilon: float, chunk: int, valid: int, with_grads: bool):
    """Summed smoothed loss and NLL of the first ``valid`` rows of ``rows @ weight.T`` (the rest are
    zero padding), chunk by chunk, with the gradients of the loss with respect to ``rows`` and
    ``weight`` if asked. Matmuls run in the autocast dtype when
    autocast is on; softmax and the accumulated weight gradient are fp32."""
    device = rows.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else weight.dtype
    V = weight.size(0)
    with torch.autocast(device, enabled=False):
        w = weight.to(dtype)
        h_all = rows.to(dtype)
        loss = torch.zeros((), device=rows.device)
        nll = torch.zeros((), device=rows.device)
        grad_rows = torch.empty(rows.shape, dtype=torch.float32, device=rows.device) if with_grads else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=rows.device) if with_grads else None
        for start in range(0, rows.size(0), chunk):
            h, t = h_all[start : start + chunk], target[start : start + chunk]
            logits = (h @ w.T).float()  # (c, V)
            target_logit = logits.gather(1, t[:, None]).squeeze(1)
            mean_logit = logits.mean(dim=-1)
            # log-sum-exp by hand, so that exp runs once and its result, in place of the logits, is
            # also the softmax of the gradient (one pass less than logsumexp and then exp again)
            top = logits.amax(dim=-1, keepdim=True)
            e = logits.sub_(top).exp_()  # (c, V)
            total = e.sum(dim=-1)
            lse = top.squeeze(1) + total.log()  # (c,)
            real = max(0, min(chunk, valid - start))  # rows of this chunk that are not padding
            chunk_nll = (lse - target_logit)[:real].sum()
            nll += chunk_nll
            loss += (1.0 - epsilon) * chunk_nll + epsilon * (lse - mean_logit)[:real].sum()  # smoothing: -mean log p
            if with_grads:  # d loss / d logits = softmax - (1 - ε) onehot - ε / V, in place
                g = e.mul_(total.reciprocal_()[:, None]).sub_(epsilon / V)
                g.scatter_add_(1, t[:, None], g.new_full((t.numel(), 1), -(1.0 - epsilon)))
                g[real:] = 0  # padding rows: no gradient (their zero hidden rows add none to grad_w either)
                g = g.to(dtype)
                grad_rows[start : start + chunk] = g @ w
                grad_w += g.T @ h
    return loss, nll, grad_rows, grad_w


class _LinearLabelSmoothedNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rows, weight, target, epsilon, chunk, valid):
        loss, nll, grad_rows, grad_w = _linear_ls_nll(rows, weight, target, epsilon, chunk, valid, with_grads=True)
        ctx.save_for_backward(grad_rows.to(rows.dtype), grad_w.to(weight.dtype))
        ctx.mark_non_differentiable(nll)
        return loss, nll

    @staticmethod
    def backward(ctx, grad_loss, _grad_nll):
        grad_rows, grad_w = ctx.saved_tensors
        return grad_rows * grad_loss, grad_w * grad_loss, None, None, None, None
