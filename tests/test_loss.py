import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from tiedtransformer.model.loss import ROW_MULTIPLE, label_smoothed_nll, linear_label_smoothed_nll
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


@pytest.mark.parametrize("row_multiple", [1, 4, 64])
@pytest.mark.parametrize("chunk_rows", [1, 3, 100])
def test_linear_loss_equals_the_loss_of_full_logits_with_its_gradients(chunk_rows, row_multiple):
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

    out = linear_label_smoothed_nll(
        hidden, weight, target, epsilon=0.1, chunk_elements=chunk_rows * V, row_multiple=row_multiple
    )
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


class MatmulShapes(TorchDispatchMode):
    """Records the operand shapes of every matrix product (``aten.mm``) run inside it."""

    def __init__(self):
        super().__init__()
        self.shapes = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.mm.default:
            self.shapes.add((tuple(args[0].shape), tuple(args[1].shape)))
        return func(*args, **(kwargs or {}))


def test_linear_loss_multiplies_a_few_shapes_whatever_the_token_count():
    # issue 32: under CPU bf16 every new shape built and cached new oneDNN kernels; one per token count
    # made memory grow through a whole run. 1..200 tokens must give ceil(200 / 64) = 4 row counts.
    torch.manual_seed(3)
    weight = torch.randn(41, 8, requires_grad=True)
    with MatmulShapes() as seen:
        for n in range(1, 201):
            hidden = torch.randn(1, n, 8, requires_grad=True)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = linear_label_smoothed_nll(hidden, weight, torch.randint(4, 41, (1, n)), 0.1)[0]
            loss.backward()
    rows = {a[0] for a, b in seen.shapes if b[-1] != a[0] and a[-1] == 8}  # h @ w.T: (rows, d) @ (d, V)
    assert rows == {64, 128, 192, 256}
    assert len(seen.shapes) == 3 * len(rows)  # h @ w.T, g @ w and g.T @ h per row count
    assert ROW_MULTIPLE == 64


def test_linear_loss_pads_no_rows_without_autocast():
    # fp32 products build no per-shape kernels, and padding changed their rounding for some row counts
    # (the weight gradient sums over rows): fp32 runs made before the padding must rerun to the last bit.
    torch.manual_seed(5)
    weight = torch.randn(41, 8, requires_grad=True)
    with MatmulShapes() as seen:
        for n in (3, 70, 130):
            hidden = torch.randn(1, n, 8, requires_grad=True)
            linear_label_smoothed_nll(hidden, weight, torch.randint(4, 41, (1, n)), 0.1)[0].backward()
    rows = {a[0] for a, b in seen.shapes if b[-1] != a[0] and a[-1] == 8}
    assert rows == {3, 70, 130}
    with MatmulShapes() as seen:  # bf16 weights without autocast (bf16-true) run 16-bit products: padded
        w16 = weight.detach().to(torch.bfloat16).requires_grad_()
        hidden = torch.randn(1, 70, 8, dtype=torch.bfloat16, requires_grad=True)
        linear_label_smoothed_nll(hidden, w16, torch.randint(4, 41, (1, 70)), 0.1)[0].backward()
    assert {a[0] for a, b in seen.shapes if b[-1] != a[0] and a[-1] == 8} == {128}
    with MatmulShapes() as seen:  # an explicit multiple still pads
        hidden = torch.randn(1, 70, 8, requires_grad=True)
        linear_label_smoothed_nll(hidden, weight, torch.randint(4, 41, (1, 70)), 0.1, row_multiple=64)[0].backward()
    assert {a[0] for a, b in seen.shapes if b[-1] != a[0] and a[-1] == 8} == {128}


def test_training_steps_of_a_second_epoch_multiply_no_new_shapes():
    # The same guard end to end: the demo's batches come in a fixed set of (B, S, T) shapes, so once
    # the loss's row counts are bucketed, a later epoch brings no matrix product of a new shape (with
    # one shape per token count every epoch brought new ones).
    from tiedtransformer.data.datamodule import TranslationData
    from tiedtransformer.model.network import TiedTransformer, TransformerConfig

    dm = TranslationData(
        source="demo", demo_train_size=1000, demo_valid_size=10, vocab_size=200, vocab_sample_size=1000,
        max_tokens=512, max_len=64, num_workers=0,
    )  # fmt: skip
    dm.setup(None)
    torch.manual_seed(4)
    net = TiedTransformer(
        TransformerConfig(200, d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32)
    )
    seen = []
    for epoch in range(2):
        with MatmulShapes() as shapes:
            for batch in dm.batch_stream("train", epoch):
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    net.loss(batch.src, batch.tgt_in, batch.tgt_out, 0.1).loss.backward()
        seen.append(shapes.shapes)
    assert len(seen[0]) > 50
    assert seen[1] <= seen[0]
