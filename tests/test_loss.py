import pytest
import torch
import torch.nn.functional as F

from tiedtransformer.model.loss import label_smoothed_nll, linear_label_smoothed_nll
from tiedtransformer.specials import PAD_ID


def test_label_smoothed_loss_matches_torch_and_ignores_padding():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11)
    target = torch.randint(4, 11, (2, 5))
    target[1, 3:] = PAD_ID
    loss, nll, n = label_smoothed_nll(logits, target, epsilon=0.1)
    assert int(n) == 8
    ref = F.cross_entropy(
        logits.view(-1, 11), target.view(-1), ignore_index=PAD_ID, label_smoothing=0.1, reduction="sum"
    )
    torch.testing.assert_close(loss, ref)
    ref_nll = F.cross_entropy(logits.view(-1, 11), target.view(-1), ignore_index=PAD_ID, reduction="sum")
    torch.testing.assert_close(nll, ref_nll)


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
