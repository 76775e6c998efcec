import math

import pytest
import torch
import torch.nn.functional as F

from tiedtransformer.losses import inverse_sqrt_factor, label_smoothed_nll
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
