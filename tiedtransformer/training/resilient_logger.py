"""A logger wrapper that keeps training going when its logger fails (W&B down mid-run)."""

from __future__ import annotations

import sys

from lightning.pytorch.loggers import Logger

from tiedtransformer.run.files import RunDir


class ResilientLogger(Logger):
    """Forwards every call to ``inner``; the first exception disables it with one message instead of
    stopping a days-long run. ``metrics.csv`` (a separate logger) keeps everything."""

    def __init__(self, inner: Logger, advice: str = ""):
        super().__init__()
        self.inner, self.advice, self.failed = inner, advice, None

    def _call(self, method: str, *args, **kwargs):
        if self.failed is not None:
            return None
        try:
            return getattr(self.inner, method)(*args, **kwargs)
        except Exception as e:  # any failure of the logging service
            self.failed = e
            print(
                f"{type(self.inner).__name__} failed ({type(e).__name__}: {e}); training goes on without it, "
                f"{RunDir.METRICS} has everything. {self.advice}",
                file=sys.stderr,
                flush=True,
            )
            return None

    @property
    def name(self):
        return self.inner.name

    @property
    def version(self):
        return self.inner.version

    @property
    def save_dir(self):
        return self.inner.save_dir

    @property
    def experiment(self):
        return self.inner.experiment

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        self._call("log_hyperparams", params, *args, **kwargs)

    def log_metrics(self, metrics, step=None) -> None:
        self._call("log_metrics", metrics, step)

    def log_graph(self, model, input_array=None) -> None:
        self._call("log_graph", model, input_array)

    def save(self) -> None:
        self._call("save")

    def finalize(self, status: str) -> None:
        self._call("finalize", status)

    def after_save_checkpoint(self, checkpoint_callback) -> None:
        self._call("after_save_checkpoint", checkpoint_callback)
