import csv
import json
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY_FIT
from tests.test_cli import REPO, run_main
from tiedtransformer.data.batching import Batch
from tiedtransformer.losses import label_smoothed_nll
from tiedtransformer.module import TranslationModule


def module(**kw):
    args = dict(vocab_size=30, d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32, tying="three_way")
    return TranslationModule(**{**args, **kw})


def test_module_builds_the_configured_network():
    m = module(projection_reg=0.15, norm_first=True)
    assert m.net.cfg.tying == "three_way" and m.net.cfg.norm_first and m.net.projection is not None
    assert m.net.cfg.vocab_size == 30


def test_optimizer_is_adam_with_the_papers_betas_and_inverse_sqrt_warmup():
    m = module(lr=1e-3, warmup_steps=10)
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


@pytest.mark.parametrize("tying,projection_reg", [("three_way", 0.0), ("none", 0.15)])
def test_training_loss_and_gradients_equal_those_of_the_whole_logits(tying, projection_reg):
    torch.manual_seed(0)
    m = module(tying=tying, projection_reg=projection_reg, label_smoothing=0.1).eval()  # eval: no dropout
    src, tgt = torch.randint(4, 30, (3, 6)), torch.randint(4, 30, (3, 5))
    tgt[2, 3:] = 0  # padding
    batch = Batch(src=src, tgt_in=torch.cat([torch.full((3, 1), 1), tgt[:, :-1]], 1), tgt_out=tgt, ids=torch.arange(3))
    loss, nll, n = m._loss(batch)
    loss.backward()
    grads = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    ref = label_smoothed_nll(m.net(batch.src, batch.tgt_in), batch.tgt_out, 0.1)
    ref[0].backward()
    for a, b in zip((loss, nll, n), ref):
        torch.testing.assert_close(a, b)
    for g, p in zip(grads, m.parameters()):
        torch.testing.assert_close(g, p.grad)


def test_compiled_network_gives_the_eager_loss_and_gradients_and_the_same_checkpoint_keys():
    torch.manual_seed(0)
    eager, compiled = module(dropout=0.0), module(dropout=0.0, compile=True)
    compiled.load_state_dict(eager.state_dict())
    assert list(compiled.state_dict()) == list(eager.state_dict())
    assert hasattr(compiled._output_inputs, "_torchdynamo_orig_callable") and not hasattr(eager._output_inputs, "_torchdynamo_orig_callable")
    for length in (5, 7):  # another length must not break the compiled graph (dynamic shapes)
        src, tgt = torch.randint(4, 30, (3, length)), torch.randint(4, 30, (3, length))
        batch = Batch(src=src, tgt_in=torch.cat([torch.full((3, 1), 1), tgt[:, :-1]], 1), tgt_out=tgt, ids=torch.arange(3))
        losses = []
        for m in (eager, compiled):
            m.zero_grad()
            loss = m._loss(batch)[0]
            loss.backward()
            losses.append(loss.detach())
        torch.testing.assert_close(losses[0], losses[1])
        for a, b in zip(eager.parameters(), compiled.parameters()):
            torch.testing.assert_close(a.grad, b.grad)


def test_stand_in_batches_send_no_gradient():
    m = module()
    loss = m.training_step(Batch.stand_in(), 0)
    loss.backward()
    assert loss.item() == 0 and all(p.grad is None or not p.grad.any() for p in m.parameters())


def metrics(run_dir: Path):
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    return [r for r in rows if r["val/loss"]], [float(r["train/loss"]) for r in rows if r["train/loss"]]


def test_learning_works_on_the_demo_corpus(tmp_path, capsys):
    """A short demo run: validation loss falls, and held-out BLEU is clearly above zero."""
    code, _, _ = run_main(
        ["fit", "-c", str(REPO / "configs/demo.yaml"), "--run.wandb=disabled", "--run.root", str(tmp_path),
         "--run.name=learn", "--data.demo_train_size=8000", "--data.vocab_sample_size=8000", "--trainer.max_epochs=2",
         "--data.demo_valid_size=100", "--model.val_bleu_sentences=100", "--data.num_workers=0",
         "--trainer.enable_progress_bar=false"],  # fmt: skip
        capsys,
    )
    assert code == 0
    val, train = metrics(tmp_path / "learn")
    assert float(val[-1]["val/loss"]) < float(val[0]["val/loss"]) - 1.0
    assert train[-1] < train[0] - 2.0
    summary = json.loads((tmp_path / "learn" / "summary.json").read_text())
    assert summary["best_val_bleu"] > 5.0


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_trains_through_the_trainer(precision, tmp_path, capsys):
    code, _, _ = run_main(["fit", *TINY_FIT, f"--trainer.precision={precision}", "--trainer.limit_train_batches=3",
                           "--run.root", str(tmp_path), "--run.name=mixed"], capsys)  # fmt: skip
    assert code == 0
    val, train = metrics(tmp_path / "mixed")
    assert train and all(torch.isfinite(torch.tensor(x)) for x in train)


@pytest.mark.slow
def test_the_full_demo_config_reaches_a_useful_bleu(tmp_path, capsys):
    """The README's first command, as it is (about 1.5 minutes on a 2-core CPU)."""
    code, _, _ = run_main(["fit", "-c", str(REPO / "configs/demo.yaml"), "--run.root", str(tmp_path), "--run.name=demo",
                           "--run.wandb=disabled", "--trainer.enable_progress_bar=false"], capsys)  # fmt: skip
    assert code == 0
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["best_val_bleu"] > 30 and summary["epochs"] == 3


def test_bleu_of_known_strings():
    from tiedtransformer.module import corpus_bleu

    # the example of sacreBLEU's README
    hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    refs = [["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
            ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."]]  # fmt: skip
    score, signature = corpus_bleu(hyps, refs)
    assert score == pytest.approx(48.53, abs=0.01)
    assert signature.startswith("nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp")
    assert corpus_bleu(refs[0], refs[:1])[0] == pytest.approx(100.0)
    assert corpus_bleu(["a b c d"], [["w x y z"]])[0] == pytest.approx(0.0)
