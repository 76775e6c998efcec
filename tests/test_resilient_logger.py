import pytest
from lightning.pytorch.loggers import Logger

from tests.conftest import TINY_FIT
from tests.test_cli import run_main
from tiedtransformer.training.resilient_logger import ResilientLogger


class Flaky(Logger):
    """Works for a few calls, then fails like a logging service going away."""

    def __init__(self, fail_after: int):
        super().__init__()
        self.calls, self.fail_after = 0, fail_after

    name, version = "flaky", "0"

    @property
    def experiment(self):
        return None

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_metrics(self, metrics, step=None):
        self.calls += 1
        if self.calls > self.fail_after:
            raise ConnectionError("service unavailable")


def test_a_failing_logger_is_disabled_once_with_a_message(capsys):
    flaky = Flaky(fail_after=2)
    lg = ResilientLogger(flaky, advice="sync later")
    for step in range(5):
        lg.log_metrics({"x": 1.0}, step)
    assert flaky.calls == 3 and isinstance(lg.failed, ConnectionError)
    err = capsys.readouterr().err
    assert err.count("Flaky failed (ConnectionError: service unavailable)") == 1 and "sync later" in err


@pytest.mark.slow
def test_training_goes_on_when_wandb_fails_mid_run(tmp_path, capsys, monkeypatch):
    from lightning.pytorch.loggers import WandbLogger

    calls = {"n": 0}
    original = WandbLogger.log_metrics

    def failing(self, metrics, step=None):
        calls["n"] += 1
        if calls["n"] > 3:
            raise ConnectionError("W&B went away")
        return original(self, metrics, step)

    monkeypatch.setattr(WandbLogger, "log_metrics", failing)
    monkeypatch.setenv("WANDB_MODE", "offline")
    args = [a for a in TINY_FIT if not a.startswith("--run.wandb")]
    code, _, err = run_main(
        ["fit", *args, "--run.root", str(tmp_path), "--run.name=w", "--similarity.analysis.top_k=10"], capsys
    )
    assert code == 0 and calls["n"] > 3
    assert "WandbLogger failed (ConnectionError: W&B went away); training goes on" in err
    assert (tmp_path / "w" / "summary.json").is_file() and (tmp_path / "w" / "metrics.csv").is_file()
