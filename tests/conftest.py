import os
import signal

# No network in tests; set before datasets / huggingface_hub read them at import.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
# Under pytest-xdist (the suite's default, pyproject's addopts) each worker, and every process a test starts,
# computes on one thread: the tests' models are tiny, and two workers of two OpenMP threads each on two cores
# made the suite slower than one process (OpenMP threads wait for each other spinning).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"

import datasets.config  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tiedtransformer.model.network import TiedTransformer, TransformerConfig  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """The slow tests first (each keeps its order): a worker that starts a two-minute test last holds up the
    whole run, while the short ones fill in around the long ones."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def tiny_sweep_runs(tmp_path_factory):
    """A local sweep of two tiny demo runs (tying none and three_way) into ``<tmp>/elsewhere``, run once per
    session: ``(run directories, the sweep's log, the sweep file, the working directory it ran in)``."""
    import io

    from tests.test_sweep import tiny_sweep
    from tiedtransformer.training.sweep import run_local

    tmp = tmp_path_factory.mktemp("sweep")
    log = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:  # session scope: the per-test isolation is not active yet
        mp.chdir(tmp)
        mp.setenv("TIEDTRANSFORMER_CACHE", str(tmp / "cache"))
        mp.setenv("WANDB_MODE", "disabled")
        path = tiny_sweep(tmp)
        assert run_local(str(path), root=str(tmp / "elsewhere"), out=log) == 0
    return sorted((tmp / "elsewhere").iterdir()), log.getvalue(), path, tmp


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No network, no W&B server, no shared cache: every test gets its own folders."""
    monkeypatch.setenv("TIEDTRANSFORMER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("TIEDTRANSFORMER_RUN_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    # A fit that a test interrupts with Ctrl-C runs in this process; Lightning then ignores SIGINT for
    # the rest of the process (it expects to exit). Every test starts as a fresh process would.
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, h in handlers.items():
        signal.signal(s, h)


def tiny_config(**overrides) -> TransformerConfig:
    fields = dict(vocab_size=23, d_model=16, n_heads=2, n_encoder_layers=2, n_decoder_layers=2, d_ff=32, dropout=0.0)
    return TransformerConfig(**{**fields, **overrides})


def tiny_model(**overrides) -> TiedTransformer:
    return TiedTransformer(tiny_config(**overrides)).eval()


TINY_FIT = [
    "--data.source=demo",
    "--data.demo_train_size=300",
    "--data.demo_valid_size=20",
    "--data.vocab_size=200",
    "--data.vocab_sample_size=300",
    "--data.num_workers=0",
    "--data.max_tokens=512",
    "--data.max_len=64",
    "--model.net.d_model=32",
    "--model.net.n_heads=2",
    "--model.net.n_encoder_layers=1",
    "--model.net.n_decoder_layers=1",
    "--model.net.d_ff=64",
    "--model.decoding.max_len_b=8",
    "--model.val_bleu_sentences=8",
    "--trainer.max_epochs=1",
    "--trainer.log_every_n_steps=1",
    "--trainer.enable_model_summary=false",
    "--trainer.enable_progress_bar=false",
    "--run.wandb=disabled",
]
# datasets sleeps 5 s after each streamed parquet pass (a guard for apache/arrow#45214 at thread
# shutdown); harmless once per epoch of WMT, but it would dominate these tiny tests.
datasets.config.SLEEP_TIME_ON_THREADS_SHUTDOWN = 0


def vocabulary_of(src: list[str], tgt: list[str], counts=None, models=None) -> dict:
    """A vocabulary in the form checkpoints and dumps keep (``Vocabulary.state``) for token lists."""
    return {"vocab_tokens": {"src": src, "tgt": tgt}, "vocab_counts": counts, "vocab_models": models}


def docs_script(name: str):
    """A script of docs/ (``keep_runs``, ``make_results``) imported as a module: docs/ is not a package."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
