"""benchmarks/loss_rounding.py: the row counts at which padding changes the fused loss's fp32 results."""

from benchmarks.loss_rounding import differing, ranges


def test_ranges_join_consecutive_counts():
    assert ranges([1, 2, 3, 7, 9, 10]) == [[1, 3], [7, 7], [9, 10]]
    assert ranges([]) == []


def test_the_default_outside_autocast_equals_the_unpadded_loss_at_every_row_count():
    found = differing(rows=70, vocab=50, dim=8)
    assert found["default"] == []  # fp32 pads nothing, so it is bit-equal to row_multiple=1
    # (whether padding itself changes a result depends on the BLAS; test_loss checks that fp32 does not pad)
    assert set(found["padded"]) <= set(range(1, 71))
