import pytest
import torch

from tiedtransformer.model.layers import Dropout, attention, keep_mask, sinusoids


def test_sinusoids_match_the_paper_formula():
    table = sinusoids(50, 8)
    pos, i = 17, 3  # dimension 2i and 2i+1
    angle = torch.tensor(pos / 10000 ** (2 * i / 8))
    torch.testing.assert_close(table[pos, 2 * i], torch.sin(angle))
    torch.testing.assert_close(table[pos, 2 * i + 1], torch.cos(angle))


def test_attention_runs_in_fp32_on_a_cpu_under_bf16_autocast(monkeypatch):
    """The CPU's bf16 flash-attention backward made a bf16 training step slower than fp32's, so attention
    takes fp32 inputs there (and autocast must not cast them back); the result is that of fp32 attention
    over the bf16 q, k, v, in bf16, and gradients flow back to them in bf16. A bf16 model without
    autocast gets the same (its next projection needs bf16)."""
    seen = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, **kw):
        seen.append((q.dtype, k.dtype, v.dtype))
        return sdpa(q, k, v, **kw)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 5, 8).bfloat16().requires_grad_() for _ in range(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = attention(q, k, v, None, True)
    assert seen == [(torch.float32,) * 3]
    expected = sdpa(q.detach().float(), k.detach().float(), v.detach().float(), is_causal=True).bfloat16()
    torch.testing.assert_close(y, expected, rtol=0, atol=0)
    seen.clear()
    torch.testing.assert_close(attention(q, k, v, None, True), expected, rtol=0, atol=0)  # no autocast
    assert seen == [(torch.float32,) * 3]
    y.sum().backward()
    assert q.grad.dtype == torch.bfloat16 and q.grad.abs().sum() > 0
    # fp32 inputs (no autocast) are passed through as they are
    seen.clear()
    attention(q.detach().float(), k.detach().float(), v.detach().float(), None, False)
    assert seen == [(torch.float32,) * 3]


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_keep_mask_keeps_each_element_with_probability_one_minus_p(p):
    """Every one of the three 16-bit slices of a random word keeps at the rate asked for (a slice
    holding the word's always-zero top bit would keep far more or far fewer), and the scale is the
    inverse of that rate."""
    torch.manual_seed(0)
    keep, scale = keep_mask((1000, 1001), p)
    assert keep.dtype == torch.bool and keep.shape == (1000, 1001)
    flat = keep.view(-1).float()
    sd = (p * (1 - p) / flat.numel()) ** 0.5
    assert abs(flat.mean().item() - (1 - p)) < 5 * sd
    for lane in range(3):  # positions of one slice of every word
        assert abs(flat[lane::3].mean().item() - (1 - p)) < 5 * sd * 3**0.5
    # neighbours (slices of one word, and of two words) are independent: P(both kept) = (1 - p)^2
    for a, b in ((flat[0::3], flat[1::3]), (flat[2:-3:3], flat[3::3])):
        both = (a[: b.numel()] * b[: a.numel()]).mean().item()
        assert abs(both - (1 - p) ** 2) < 0.01
    assert scale == pytest.approx(1 / (1 - p), rel=1e-4)


def test_keep_mask_follows_torchs_seed_and_any_shape():
    torch.manual_seed(3)
    a, _ = keep_mask((7, 5, 11), 0.2)  # 385 elements: not a multiple of three
    torch.manual_seed(3)
    b, _ = keep_mask((7, 5, 11), 0.2)
    assert a.shape == (7, 5, 11) and torch.equal(a, b)
    assert not torch.equal(a, keep_mask((7, 5, 11), 0.2)[0])  # the generator moved on
    assert keep_mask((), 0.5)[0].shape == () and keep_mask((0, 4), 0.5)[0].shape == (0, 4)
    assert keep_mask((4,), 1 - 1e-9)[1] == 2**16  # nearly 1 keeps one value in 2**16: finite scale


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dropout_zeroes_and_scales_and_its_gradient_uses_the_same_mask(dtype):
    torch.manual_seed(0)
    drop = Dropout(0.25).train()
    x = (torch.rand(64, 33, 40) + 0.5).to(dtype).requires_grad_()
    y = drop(x)
    assert y.dtype == dtype and y.shape == x.shape
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.02
    torch.testing.assert_close(y[kept], (x[kept].float() / 0.75).to(dtype))
    assert abs(y.float().mean().item() / x.float().mean().item() - 1) < 0.01  # expectation kept
    g = torch.randn_like(x)
    y.backward(g)
    torch.testing.assert_close(x.grad, torch.where(kept, (g.float() / 0.75).to(dtype), torch.zeros_like(g)))


def test_dropout_is_the_identity_in_eval_mode_and_at_rate_zero_and_seeded_in_training():
    x = torch.randn(5, 6, 7)
    assert Dropout(0.3).eval()(x) is x and Dropout(0.0).train()(x) is x
    torch.manual_seed(1)
    a = Dropout(0.3).train()(x)
    torch.manual_seed(1)
    assert torch.equal(a, Dropout(0.3).train()(x)) and (a == 0).any()
