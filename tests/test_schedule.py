import math

import pytest

from tiedtransformer.training.schedule import budget_progress, inverse_sqrt_factor, lr_factor


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
