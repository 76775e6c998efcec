"""A resumed run equals an uninterrupted one: same batches (pair ids), same per-step losses; and an
interrupted run leaves a checkpoint to resume from."""

import json
from pathlib import Path

import pytest

from tests.conftest import TINY_FIT
from tests.test_cli import run_main

N = 8  # steps per leg; an epoch of the tiny corpus has 18 batches: legs stop mid-epoch, the run crosses one


def fit_args(tmp_path, name, record, *extra):
    args = [a for a in TINY_FIT if not a.startswith("--trainer.max_epochs")]
    return [
        "fit",
        *args,
        "--model.net.dropout=0.1",
        "--trainer.max_epochs=10",
        f"--trainer.max_steps={3 * N}",
        "--run.root",
        str(tmp_path / "runs"),
        f"--run.name={name}",
        "--similarity.analysis.top_k=10",
        "--trainer.callbacks+=tests.probes.RecordSteps",
        f"--trainer.callbacks.out_file={record}",
        *extra,
    ]


def stop_at(step, how):
    return [
        "--trainer.callbacks+=tests.probes.StopAt",
        f"--trainer.callbacks.step={step}",
        f"--trainer.callbacks.how={how}",
    ]


def steps(record: Path) -> dict[int, dict]:
    return {r["step"]: r for r in map(json.loads, record.read_text().splitlines())}


def test_interrupted_and_resumed_twice_equals_uninterrupted(tmp_path, capsys):
    full = tmp_path / "full.jsonl"
    code, _, err = run_main(fit_args(tmp_path, "full", full), capsys)
    assert code == 0, err[-3000:]
    reference = steps(full)
    assert sorted(reference) == list(range(1, 3 * N + 1))
    assert len({r["epoch"] for r in reference.values()}) >= 2  # the legs cross an epoch boundary

    parts, run = tmp_path / "parts.jsonl", tmp_path / "runs" / "parts"
    code, out, err = run_main(fit_args(tmp_path, "parts", parts, *stop_at(N, "sigterm")), capsys)
    assert code == 143, err[-3000:]  # SIGTERM: non-zero exit, a checkpoint at step N
    assert f"at step {N}: checkpoint written to" in out and (run / "checkpoints" / "last-interrupted.ckpt").is_file()

    ckpt = run / "checkpoints" / "last-interrupted.ckpt"
    with pytest.raises(RuntimeError, match="injected failure"):  # an exception mid-epoch saves too
        run_main(fit_args(tmp_path, "other", parts, f"--ckpt_path={ckpt}", *stop_at(2 * N, "exception")), capsys)
    assert f"at step {2 * N}: checkpoint written to" in capsys.readouterr().out

    code, out, err = run_main(["fit", "-c", str(run / "config.yaml"), "--ckpt_path=last"], capsys)
    assert code == 0, err[-3000:]
    assert "(resuming)" in out

    resumed = steps(parts)
    assert sorted(resumed) == sorted(reference)
    for step, ref in reference.items():
        assert resumed[step]["ids"] == ref["ids"], step
        assert resumed[step]["loss"] == pytest.approx(ref["loss"], abs=1e-6), step
    assert (run / "metrics.csv").is_file() and (run / "resume-1" / "metrics.csv").is_file()
    assert (run / "resume-2" / "metrics.csv").is_file() and not (tmp_path / "runs" / "other").exists()
    assert json.loads((run / "summary.json").read_text())["global_step"] == 3 * N


@pytest.mark.parametrize("first_leg", ["finished", "step_checkpoint", "sigterm"])
def test_resuming_at_an_epoch_boundary_continues_as_one_longer_run(tmp_path, capsys, first_leg):
    # The first leg stops after the last batch of epoch 0, its checkpoint written at the end of the
    # run (after validation), by --checkpoint.every_n_train_steps on that batch, or on SIGTERM right
    # after it. Resuming must train epoch 1 exactly as an uninterrupted two-epoch run does.
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    code, _, err = run_main(
        fit_args(tmp_path, "full", full, "--trainer.max_steps=-1", "--trainer.max_epochs=2"), capsys
    )
    assert code == 0, err[-3000:]
    reference = steps(full)
    per_epoch = sum(r["epoch"] == 0 for r in reference.values())
    assert {r["epoch"] for r in reference.values()} == {0, 1} and per_epoch > 1
    leg = {
        "finished": ["--trainer.max_epochs=1"],
        "step_checkpoint": ["--trainer.max_epochs=1", f"--checkpoint.every_n_train_steps={per_epoch}"],
        "sigterm": ["--trainer.max_epochs=2", *stop_at(per_epoch, "sigterm")],
    }[first_leg]
    code, _, err = run_main(fit_args(tmp_path, "part", part, "--trainer.max_steps=-1", *leg), capsys)
    assert code == (143 if first_leg == "sigterm" else 0), err[-3000:]
    assert sorted(steps(part)) == list(range(1, per_epoch + 1))
    run = tmp_path / "runs" / "part"
    code, out, err = run_main(
        ["fit", "-c", str(run / "config.yaml"), "--ckpt_path=last", "--trainer.max_epochs=2"], capsys
    )
    assert code == 0, err[-3000:]
    resumed = steps(part)
    assert sorted(resumed) == sorted(reference)
    for step, ref in reference.items():
        assert resumed[step]["ids"] == ref["ids"], step
        assert resumed[step]["loss"] == pytest.approx(ref["loss"], abs=1e-6), step


def test_ctrl_c_writes_a_checkpoint_and_exits_non_zero(tmp_path, capsys):
    code, out, _ = run_main(fit_args(tmp_path, "c", tmp_path / "r.jsonl", *stop_at(3, "sigint")), capsys)
    assert code == 1 and (tmp_path / "runs" / "c" / "checkpoints" / "last-interrupted.ckpt").is_file()


def test_a_checkpoint_of_another_tying_mode_is_refused(tmp_path, capsys):
    code, _, err = run_main(fit_args(tmp_path, "a", tmp_path / "a.jsonl", "--trainer.max_steps=3"), capsys)
    assert code == 0, err[-2000:]
    ckpt = tmp_path / "runs" / "a" / "checkpoints" / "last.ckpt"
    code, _, err = run_main(
        fit_args(tmp_path, "b", tmp_path / "b.jsonl", "--model.net.tying=three_way", f"--ckpt_path={ckpt}"), capsys
    )
    assert code == 2 and "model.net.tying='none'" in err and "Traceback" not in err
    code, _, err = run_main(
        fit_args(tmp_path, "b", tmp_path / "b.jsonl", "--data.vocab_size=180", f"--ckpt_path={ckpt}"), capsys
    )
    assert code == 2 and "vocab_size" in err


def poison(step):
    return ["--trainer.callbacks+=tests.probes.PoisonGradient", f"--trainer.callbacks.step={step}"]


def test_nonfinite_gradient_stops_with_a_message_and_a_finite_checkpoint(tmp_path, capsys):
    code, _, err = run_main(fit_args(tmp_path, "nan", tmp_path / "r.jsonl", *poison(4)), capsys)
    assert code == 1 and "non-finite loss or gradient at step 4" in err and "--model.optim.nonfinite=skip" in err
    assert "Traceback" not in err
    import torch

    ckpt = torch.load(tmp_path / "runs" / "nan" / "checkpoints" / "last-interrupted.ckpt", weights_only=False)
    assert ckpt["global_step"] == 3
    assert all(torch.isfinite(t).all() for t in ckpt["state_dict"].values() if t.is_floating_point())


def test_nonfinite_gradient_can_be_skipped_and_counted(tmp_path, capsys):
    code, _, err = run_main(
        fit_args(
            tmp_path, "skip", tmp_path / "r.jsonl", "--model.optim.nonfinite=skip", "--trainer.max_steps=6", *poison(4)
        ),
        capsys,
    )
    assert code == 0, err[-2000:]
    summary = json.loads((tmp_path / "runs" / "skip" / "summary.json").read_text())
    assert summary["skipped_steps"] == 1 and summary["status"] == "finished"
