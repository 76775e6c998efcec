import math

import pytest
import torch
import torch.nn.functional as F

from tiedtransformer.losses import budget_progress, inverse_sqrt_factor, label_smoothed_nll, linear_label_smoothed_nll, lr_factor
from tiedtransformer.specials import PAD_ID


def test_label_smoothed_loss_matches_torch_and_ignores_padding():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11)
    target = torch.randint(4, 11, (2, 5))
    target[1, 3:] = PAD_ID
    loss, nll, n = label_smoothed_nll(logits, target, epsilon=0.1)
    assert int(n) == 8
    ref = F.cross_entropy(logits.view(-1, 11), target.view(-1), ignore_index=PAD_ID, label_smoothing=0.1, reduction="sum")
    torch.testing.assert_close(loss, ref)
    ref_nll = F.cross_entropy(logits.view(-1, 11), target.view(-1), ignore_index=PAD_ID, reduction="sum")
    torch.testing.assert_close(nll, ref_nll)


def test_inverse_sqrt_schedule_peaks_at_the_end_of_warmup():
    w = 4000
    assert inverse_sqrt_factor(w, w) == pytest.approx(1.0)
    assert inverse_sqrt_factor(w // 2, w) == pytest.approx(0.5)
    assert inverse_sqrt_factor(4 * w, w) == pytest.approx(0.5)
    # proportional to Vaswani et al.'s d^-0.5 * min(step^-0.5, step * warmup^-1.5)
    for step in (1, 100, 3999, 4000, 10_000, 100_000):
        vaswani = 512**-0.5 * min(step**-0.5, step * w**-1.5)
        assert inverse_sqrt_factor(step, w) * 512**-0.5 * w**-0.5 == pytest.approx(vaswani)
    assert inverse_sqrt_factor(9, 0) == pytest.approx(1 / math.sqrt(9))


def test_budget_progress_is_the_budget_that_ends_training_first():
    assert budget_progress(50, 100, None, None) == pytest.approx(0.5)
    assert budget_progress(50, None, 30.0, 120.0) == pytest.approx(0.25)
    assert budget_progress(50, 100, 90.0, 120.0) == pytest.approx(0.75)  # time runs out first
    assert budget_progress(500, 100, None, None) == 1.0
    assert budget_progress(50, None, None, None) is None


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_decaying_schedules_warm_up_then_reach_the_final_rate_at_the_end_of_the_budget(schedule):
    assert lr_factor(50, 100, schedule, progress=0.0) == pytest.approx(0.5)  # warm-up
    assert lr_factor(100, 100, schedule, progress=0.0) == pytest.approx(1.0)
    assert lr_factor(1000, 100, schedule, progress=1.0) == pytest.approx(0.0)
    assert lr_factor(1000, 100, schedule, progress=1.0, final_factor=0.1) == pytest.approx(0.1)
    assert lr_factor(1000, 100, schedule, progress=0.5) == pytest.approx(0.5)  # linear and cosine meet half-way
    rates = [lr_factor(1000, 100, schedule, progress=p / 10) for p in range(11)]
    assert rates == sorted(rates, reverse=True)
    assert lr_factor(1000, 100, "linear", progress=0.25) == pytest.approx(0.75)
    assert lr_factor(1000, 100, "cosine", progress=0.25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor(400, 100, "inverse_sqrt", progress=0.9) == pytest.approx(0.5)  # ignores the budget
    with pytest.raises(ValueError, match="progress"):
        lr_factor(10, 100, schedule, progress=None)


@pytest.mark.parametrize("chunk_rows", [1, 3, 100])
def test_linear_loss_equals_the_loss_of_full_logits_with_its_gradients(chunk_rows):
    torch.manual_seed(1)
    V, d = 53, 16
    hidden = torch.randn(4, 7, d, requires_grad=True)
    weight = torch.randn(V, d, requires_grad=True)
    target = torch.randint(4, V, (4, 7))
    target[1, 4:] = PAD_ID
    target[3, :] = PAD_ID

    ref = label_smoothed_nll(hidden @ weight.T, target, epsilon=0.1)
    (0.3 * ref[0]).backward()
    ref_grads = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None

    out = linear_label_smoothed_nll(hidden, weight, target, epsilon=0.1, chunk_elements=chunk_rows * V)
    (0.3 * out[0]).backward()
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(hidden.grad, ref_grads[0])
    torch.testing.assert_close(weight.grad, ref_grads[1])
    assert not hidden.grad[3].any()  # padding rows get no gradient


def test_linear_loss_without_gradients_and_under_bf16_autocast():
    torch.manual_seed(2)
    hidden, weight = torch.randn(3, 5, 8), torch.randn(41, 8)
    target = torch.randint(4, 41, (3, 5))
    ref = label_smoothed_nll(hidden @ weight.T, target, epsilon=0.1)
    with torch.no_grad():
        torch.testing.assert_close(linear_label_smoothed_nll(hidden, weight, target, 0.1), ref)
    weight.requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, nll, n = linear_label_smoothed_nll(hidden, weight, target, 0.1)
    loss.backward()
    assert weight.grad.dtype == torch.float32
    torch.testing.assert_close(loss, ref[0], rtol=2e-2, atol=0.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref_loss = label_smoothed_nll(hidden @ weight.T, target, epsilon=0.1)[0]
    ref_grad = torch.autograd.grad(ref_loss, weight)[0]
    torch.testing.assert_close(weight.grad, ref_grad, rtol=5e-2, atol=5e-2)


def test_linear_loss_of_an_all_padding_batch_is_zero_with_zero_gradients():
    hidden, weight = torch.randn(2, 3, 8, requires_grad=True), torch.randn(41, 8, requires_grad=True)
    loss, nll, n = linear_label_smoothed_nll(hidden, weight, torch.full((2, 3), PAD_ID), 0.1)
    loss.backward()
    assert float(loss.detach()) == 0.0 and int(n) == 0
    assert not hidden.grad.any() and not weight.grad.any()
