import csv
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import TINY_FIT
from tests.test_cli import REPO, run_main
from tiedtransformer.data.batching import Batch
from tiedtransformer.model.network import TransformerConfig
from tiedtransformer.run.checkpoint import load_checkpoint
from tiedtransformer.training.module import TranslationModule
from tiedtransformer.training.options import OptimConfig


def module(net: dict | None = None, optim: dict | None = None, **kw):
    shape = dict(
        vocab_size=30, d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32, tying="three_way"
    )
    return TranslationModule(TransformerConfig(**{**shape, **(net or {})}), OptimConfig(**(optim or {})), **kw)


def test_module_builds_the_configured_network():
    m = module(net=dict(projection_reg=0.15, norm_first=True))
    assert m.net.cfg.tying == "three_way" and m.net.cfg.norm_first and m.net.projection is not None
    assert m.net.cfg.vocab_size == 30


def test_optimizer_is_adam_with_the_papers_betas_and_inverse_sqrt_warmup():
    m = module(optim=dict(lr=1e-3, warmup_steps=10))
    conf = m.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert opt.defaults["betas"] == (0.9, 0.98) and opt.defaults["weight_decay"] == 0.0
    assert conf["lr_scheduler"]["interval"] == "step"
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[9] == pytest.approx(1e-3) and lrs[0] == pytest.approx(1e-4)
    assert lrs[39] == pytest.approx(1e-3 * (10 / 40) ** 0.5)


@pytest.mark.parametrize("algorithm", ["norm", "value"])
def test_a_fused_adam_is_clipped_as_lightning_clips(algorithm):
    """Lightning refuses to clip for any fused optimizer under mixed precision, so the module clips a
    fused AdamW itself, with torch's clipping, as Lightning does for other optimizers."""
    m = module()
    opt = m.configure_optimizers()["optimizer"]
    assert opt.param_groups[0]["fused"]  # no trainer: no gradient scaler
    torch.manual_seed(0)
    for p in m.parameters():
        p.grad = 10 * torch.randn_like(p)
    m.configure_gradient_clipping(opt, 0.5, algorithm)
    grads = [p.grad for p in m.parameters()]
    if algorithm == "norm":
        assert torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item() == pytest.approx(0.5, rel=1e-4)
    else:
        assert max(g.abs().max().item() for g in grads) == 0.5
    before = [g.clone() for g in grads]
    m.configure_gradient_clipping(opt, 0.0, algorithm)  # 0: no clipping
    assert all(torch.equal(a, p.grad) for a, p in zip(before, m.parameters()))


def test_adam_is_foreach_where_a_gradient_scaler_is_at_work():
    m = module()
    # a trainer at 16-mixed on a GPU, as far as configure_optimizers looks
    m._trainer = SimpleNamespace(precision_plugin=SimpleNamespace(scaler=object()), callbacks=[], max_steps=-1)
    opt = m.configure_optimizers()["optimizer"]
    assert opt.param_groups[0]["foreach"] and not opt.param_groups[0]["fused"]


def test_stand_in_batches_send_no_gradient():
    m = module()
    loss = m.training_step(Batch.stand_in(), 0)
    loss.backward()
    assert loss.item() == 0 and all(p.grad is None or not p.grad.any() for p in m.parameters())


def metrics(run_dir: Path):
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    return [r for r in rows if r["val/loss"]], [float(r["train/loss"]) for r in rows if r["train/loss"]]


@pytest.mark.slow
def test_learning_works_on_the_demo_corpus(tmp_path, capsys):
    """A short demo run: validation loss falls, and held-out BLEU is clearly above zero."""
    code, _, _ = run_main(
        [
            "fit",
            "-c",
            str(REPO / "configs/demo.yaml"),
            "--run.wandb=disabled",
            "--run.root",
            str(tmp_path),
            "--run.name=learn",
            "--data.demo_train_size=8000",
            "--data.vocab_sample_size=8000",
            "--trainer.max_epochs=2",
            "--data.demo_valid_size=100",
            "--model.val_bleu_sentences=100",
            "--data.num_workers=0",
            "--trainer.enable_progress_bar=false",
        ],
        capsys,
    )
    assert code == 0
    val, train = metrics(tmp_path / "learn")
    assert float(val[-1]["val/loss"]) < float(val[0]["val/loss"]) - 1.0
    assert train[-1] < train[0] - 2.0
    summary = json.loads((tmp_path / "learn" / "summary.json").read_text())
    assert summary["best_val_bleu"] > 5.0


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_trains_through_the_trainer(precision, tmp_path, capsys):
    code, _, _ = run_main(
        [
            "fit",
            *TINY_FIT,
            f"--trainer.precision={precision}",
            "--trainer.limit_train_batches=3",
            "--run.root",
            str(tmp_path),
            "--run.name=mixed",
        ],
        capsys,
    )
    assert code == 0
    val, train = metrics(tmp_path / "mixed")
    assert train and all(torch.isfinite(torch.tensor(x)) for x in train)
    # no gradient scaler on a CPU (Lightning runs 16-mixed as bf16-mixed there): AdamW fused, clipped by the module
    state = load_checkpoint(tmp_path / "mixed" / "checkpoints" / "last.ckpt")
    assert state["optimizer_states"][0]["param_groups"][0]["fused"]


@pytest.mark.slow
def test_the_full_demo_config_reaches_a_useful_bleu(tmp_path, capsys):
    """The README's first command, as it is (about 1.5 minutes on a 2-core CPU)."""
    code, _, _ = run_main(
        [
            "fit",
            "-c",
            str(REPO / "configs/demo.yaml"),
            "--run.root",
            str(tmp_path),
            "--run.name=demo",
            "--run.wandb=disabled",
            "--trainer.enable_progress_bar=false",
        ],
        capsys,
    )
    assert code == 0
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["best_val_bleu"] > 30 and summary["epochs"] == 3


def lr_and_steps(run_dir: Path) -> list[float]:
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    return [float(r["train/lr"]) for r in rows if r.get("train/lr")]


@pytest.mark.slow
def test_a_linear_schedule_decays_to_zero_at_max_steps(tmp_path, capsys):
    code, _, err = run_main(
        [
            "fit",
            *TINY_FIT,
            "--model.optim.schedule=linear",
            "--model.optim.lr=1e-3",
            "--model.optim.warmup_steps=2",
            "--trainer.max_steps=6",
            "--trainer.max_epochs=10",
            "--run.root",
            str(tmp_path),
            "--run.name=lin",
        ],
        capsys,
    )
    assert code == 0, err
    # the rate of step s (1-based) is warm-up x (1 - (s - 1) / max_steps)
    expected = [1e-3 * min(1, s / 2) * (1 - (s - 1) / 6) for s in range(1, 7)]
    assert lr_and_steps(tmp_path / "lin") == pytest.approx(expected)


@pytest.mark.slow
def test_a_time_budget_anneals_the_rate_by_the_time_training_stops(tmp_path, capsys):
    code, _, err = run_main(
        [
            "fit",
            *TINY_FIT,
            "--model.optim.schedule=cosine",
            "--model.optim.lr=1e-3",
            "--model.optim.warmup_steps=1",
            "--trainer.max_time=00:00:00:06",
            "--trainer.max_epochs=1000",
            "--model.val_bleu_sentences=0",
            "--snapshot.every_n_epochs=0",
            "--run.root",
            str(tmp_path),
            "--run.name=timed",
        ],
        capsys,
    )
    assert code == 0, err
    lrs = lr_and_steps(tmp_path / "timed")
    assert len(lrs) > 20 and lrs == sorted(lrs, reverse=True)
    # stopped by the budget with the rate near zero (the last step's rate is set one step and, at an
    # epoch's end, one validation before the time runs out)
    assert lrs[0] > 0.99e-3 and lrs[-1] < 0.08e-3


def test_a_decaying_schedule_without_a_budget_is_refused(tmp_path, capsys):
    code, _, err = run_main(["fit", *TINY_FIT, "--model.optim.schedule=linear", "--run.root", str(tmp_path)], capsys)
    assert code == 2 and "model.optim.schedule=linear" in err and "trainer.max_time" in err and "Traceback" not in err


@pytest.mark.slow
def test_validation_bleu_is_scored_on_a_seeded_sample_not_on_the_shortest_sentences(tmp_path, capsys, monkeypatch):
    """Before, BLEU was scored on the first N sentences of the length-sorted validation stream."""
    import random

    import tiedtransformer.training.module as module_py
    from tests.data_helpers import demo_texts, write_parallel
    from tiedtransformer.analysis.scores import sample_ids

    rng = random.Random(0)
    base = demo_texts(200, "validation")
    valid = []  # 60 pairs of 1 to 6 demo sentences each, lengths in random order
    for i in range(60):
        k = rng.randint(1, 6)
        valid.append({lang: " ".join(p[lang] for p in base[3 * i : 3 * i + k]) for lang in ("en", "de")})
    write_parallel(tmp_path / "data" / "valid", valid)
    write_parallel(tmp_path / "data" / "train", demo_texts(300))
    scored = []  # the references of the sentences each validation (and the final evaluation) translated
    translate_split = module_py.TranslationModule.translate_split

    def recorded(self, *args):
        ids, hyps, refs = translate_split(self, *args)
        scored.append(refs)
        return ids, hyps, refs

    monkeypatch.setattr(module_py.TranslationModule, "translate_split", recorded)
    code, _, err = run_main(
        [
            "fit",
            *TINY_FIT,
            "--data.source=files",
            f"--data.train_path={tmp_path / 'data/train'}",
            f"--data.valid_path={tmp_path / 'data/valid'}",
            "--model.val_bleu_sentences=15",
            "--trainer.max_epochs=2",
            "--data.max_len=256",
            "--run.root",
            str(tmp_path),
            "--run.name=s",
        ],
        capsys,
    )
    assert code == 0, err
    refs = [p["de"] for p in valid]
    sample = [refs[i] for i in sample_ids(60, 15, seed=0)]
    assert scored == [sample, sample, refs]  # two validations on the same sample, then all, in file order
    mean = lambda texts: sum(len(t.split()) for t in texts) / len(texts)  # noqa: E731
    shortest = sorted(refs, key=lambda t: len(t.split()))[:15]
    assert mean(sample) > mean(shortest) + 0.5 * (mean(refs) - mean(shortest))
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["val_bleu_sentences"] == 15 and summary["final_val_sentences"] == 60
    assert [v["epoch"] for v in summary["val_bleu_by_validation"]] == [0, 1]
    assert (tmp_path / "s" / "final-val.de").read_text().count("\n") == 60


@pytest.mark.slow
def test_tokens_per_update_sets_the_accumulation_and_is_printed(tmp_path, capsys):
    code, out, err = run_main(
        [
            "fit",
            *TINY_FIT,
            "--model.optim.tokens_per_update=1500",
            "--trainer.limit_train_batches=6",
            "--run.root",
            str(tmp_path),
            "--run.name=acc",
        ],
        capsys,
    )
    assert code == 0, err
    assert "tokens per update: up to 1,536 per side (data.max_tokens=512 x 1 device(s) x 3 accumulated" in out
    assert json.loads((tmp_path / "acc" / "summary.json").read_text())["global_step"] == 2
    code, _, err = run_main(
        [
            "fit",
            *TINY_FIT,
            "--model.optim.tokens_per_update=1500",
            "--trainer.accumulate_grad_batches=2",
            "--run.root",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 2 and "trainer.accumulate_grad_batches=2" in err
    code, _, err = run_main(
        [
            "fit",
            *TINY_FIT,
            "--model.optim.tokens_per_update=1000",
            "--trainer.devices=8",
            "--trainer.strategy=ddp",
            "--run.root",
            str(tmp_path / "x"),
        ],
        capsys,
    )
    assert (
        code == 2
        and "lower data.max_tokens to 125" in err
        and not (tmp_path / "x").exists()
        or not any((tmp_path / "x").iterdir())
    )


def test_compile_option_compiles_the_networks_teacher_forcing_only():
    assert module(compile=True).net._compiled and not module().net._compiled
