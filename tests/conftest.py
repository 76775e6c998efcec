import os
import signal

# No network in tests; set before datasets / huggingface_hub read them at import.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import datasets.config  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tiedtransformer.model.network import TiedTransformer, TransformerConfig  # noqa: E402


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
