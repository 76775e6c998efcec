"""A resumed run equals an uninterrupted one: same batches (pair ids), same per-step losses; and an
interrupted run leaves a checkpoint to resume from."""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
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


def records(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def steps(record: Path) -> dict[int, dict]:
    """The record of each step, which must have been trained exactly once over all legs (a leg that
    retrained from an earlier step would record some steps twice)."""
    rows = records(record)
    repeated = {s: c for s, c in Counter(r["step"] for r in rows).items() if c > 1}
    assert not repeated, f"steps trained more than once: {repeated}"
    return {r["step"]: r for r in rows}


@pytest.mark.slow
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


@pytest.mark.parametrize(
    "first_leg, max_steps", [("finished", -1), ("step_checkpoint", -1), ("sigterm", -1), ("finished", 1000)]
)
@pytest.mark.slow
def test_resuming_at_an_epoch_boundary_continues_as_one_longer_run(tmp_path, capsys, first_leg, max_steps):
    # The first leg stops after the last batch of epoch 0, its checkpoint written at the end of the
    # run (after validation), by --checkpoint.every_n_train_steps on that batch, or on SIGTERM right
    # after it. Resuming must train epoch 1 exactly as an uninterrupted two-epoch run does, also with a
    # step budget (Lightning then restarts its epoch loop, and skipped epoch 1 without a batch).
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    budget = f"--trainer.max_steps={max_steps}"
    code, _, err = run_main(fit_args(tmp_path, "full", full, budget, "--trainer.max_epochs=2"), capsys)
    assert code == 0, err[-3000:]
    reference = steps(full)
    per_epoch = sum(r["epoch"] == 0 for r in reference.values())
    assert {r["epoch"] for r in reference.values()} == {0, 1} and per_epoch > 1
    leg = {
        "finished": ["--trainer.max_epochs=1"],
        "step_checkpoint": ["--trainer.max_epochs=1", f"--checkpoint.every_n_train_steps={per_epoch}"],
        "sigterm": ["--trainer.max_epochs=2", *stop_at(per_epoch, "sigterm")],
    }[first_leg]
    code, _, err = run_main(fit_args(tmp_path, "part", part, budget, *leg), capsys)
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
    # the summary counts both legs: every validation, the best BLEU, the training tokens (a leg stopped by
    # SIGTERM before its epoch's validation never validated that epoch: the resumed run has one validation less)
    a, b = (json.loads((tmp_path / "runs" / n / "summary.json").read_text()) for n in ("full", "part"))

    def validations(summary):
        return [{k: v for k, v in x.items() if k != "wall_s"} for x in summary["val_bleu_by_validation"]]

    expected = validations(a)[1:] if first_leg == "sigterm" else validations(a)
    assert validations(b) == expected and b["train_tokens"] == a["train_tokens"]
    assert (
        b["best_val_bleu"] == max(x["bleu"] for x in expected)
        or abs(b["best_val_bleu"] - max(x["bleu"] for x in expected)) < 0.01
    )


def test_ctrl_c_writes_a_checkpoint_and_exits_non_zero(tmp_path, capsys):
    # Ctrl-C as a terminal delivers it, whatever an earlier fit in this process left installed (Lightning
    # ignores SIGINT after handling one; conftest restores the handlers after each test)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code, out, _ = run_main(fit_args(tmp_path, "c", tmp_path / "r.jsonl", *stop_at(3, "sigint")), capsys)
    assert code == 1 and (tmp_path / "runs" / "c" / "checkpoints" / "last-interrupted.ckpt").is_file()


@pytest.mark.slow
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


@pytest.mark.slow
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


def test_the_step_count_check_sees_a_leg_that_retrained(tmp_path):
    record = tmp_path / "r.jsonl"
    record.write_text("".join(json.dumps({"step": s}) + "\n" for s in [1, 2, 3, 1, 2, 3, 4]))
    with pytest.raises(AssertionError, match="trained more than once"):
        steps(record)


def _all_files_whole(run: Path) -> None:
    """Every file of a run directory reads as what it should be; nothing is left mid-write."""
    import yaml

    from tiedtransformer.analysis.dumps import read_dump
    from tiedtransformer.run.checkpoint import load_checkpoint

    for f in run.rglob("*"):
        if "wandb" in f.parts or not f.is_file():
            continue
        assert not f.name.startswith("."), f"left mid-write: {f}"
        if f.suffix == ".ckpt":
            load_checkpoint(f)
        elif f.suffix == ".json":
            json.loads(f.read_text())
        elif f.suffix == ".yaml":
            yaml.safe_load(f.read_text())
        elif f.suffix == ".csv":
            rows = list(csv.reader(f.open()))
            assert rows and all(len(r) == len(rows[0]) for r in rows), f
    for dump in (run / "embeddings").glob("step-*"):
        read_dump(dump)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_sigkill_at_a_random_moment_then_resume_continues_from_the_last_whole_checkpoint(tmp_path, capsys, seed):
    full = tmp_path / "full.jsonl"
    every = ["--checkpoint.every_n_train_steps=3", "--trainer.val_check_interval=5"]
    code, _, err = run_main(fit_args(tmp_path, "full", full, *every), capsys)
    assert code == 0, err[-3000:]
    reference = steps(full)

    part, run = tmp_path / "part.jsonl", tmp_path / "runs" / "part"
    # any moment of the work: after a random step (checkpoints every 3rd) and a random part of the next,
    # counted in steps rather than seconds, so that a fast machine does not finish first
    rng = random.Random(seed)
    kill_step, kill_after = rng.randint(4, 3 * N - 3), rng.uniform(0.0, 0.15)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tiedtransformer", *fit_args(tmp_path, "part", part, *every)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while proc.poll() is None and (not part.exists() or len(part.read_text().splitlines()) < kill_step):
        time.sleep(0.01)
    time.sleep(kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    text = part.read_text()
    part.write_text(text[: text.rfind("\n") + 1])  # a record the kill cut short is not a step trained
    trained = len(records(part))
    assert trained < 3 * N, "the run ended before it was killed; kill it sooner"

    from tiedtransformer.run.checkpoint import load_checkpoint
    from tiedtransformer.run.files import RunDir

    last = RunDir(run).last_checkpoint()
    start = load_checkpoint(last)["global_step"] if last else 0
    code, out, err = run_main(["fit", "-c", str(run / "config.yaml"), "--ckpt_path=last"], capsys)
    if last is None:  # killed before the first checkpoint: nothing to resume, and it says so
        assert code == 2 and "holds no last*.ckpt to resume from" in err
        return
    assert code == 0, err[-3000:]
    rows = records(part)
    resumed = rows[trained:]  # the records of the resumed leg
    assert resumed[0]["step"] == start + 1, (start, resumed[0]["step"])  # from the last whole checkpoint
    assert [r["step"] for r in resumed] == list(range(start + 1, 3 * N + 1))
    for r in resumed:
        assert r["ids"] == reference[r["step"]]["ids"], r["step"]
        assert r["loss"] == pytest.approx(reference[r["step"]]["loss"], abs=1e-6), r["step"]
    _all_files_whole(run)


def fail_writes(monkeypatch, fragment: str, after: int = 0) -> None:
    """A disk that fills up: flushing a file whose temporary name holds ``fragment`` fails with ENOSPC,
    after ``after`` such flushes succeeded (the atomic writers flush each file before renaming it)."""
    import errno

    real, seen = os.fsync, []

    def fsync(fd):
        if fragment in os.readlink(f"/proc/self/fd/{fd}"):
            seen.append(fd)
            if len(seen) > after:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize(
    "what, fragment, after",
    [
        ("checkpoint", "/checkpoints/.last.ckpt.", 1),
        ("dump", "/embeddings/.step-", 5),  # the 5 files of the step-0 dump, then the next dump fails
        ("summary", "/.summary.json.", 0),
    ],
)
@pytest.mark.slow
def test_a_full_disk_mid_run_stops_with_a_message_and_keeps_what_was_written(
    tmp_path, capsys, monkeypatch, what, fragment, after
):
    fail_writes(monkeypatch, fragment, after)
    every = ["--checkpoint.every_n_train_steps=2", "--trainer.val_check_interval=2", "--trainer.max_steps=6"]
    args = fit_args(tmp_path, "d", tmp_path / "r.jsonl", *every)
    code, out, err = run_main(args, capsys)
    run = tmp_path / "runs" / "d"
    last = err.strip().splitlines()[-1]
    assert code == 1 and "Traceback" not in err, err[-3000:]
    assert last.startswith(f"error: could not write {run}/") and "No space left on device" in last
    assert "What was there before is intact" in last
    if what == "checkpoint":  # the last.ckpt of step 2 is whole; training stopped at the failed write
        from tiedtransformer.run.checkpoint import load_checkpoint

        assert load_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 2
        assert "last-interrupted.ckpt" not in os.listdir(run / "checkpoints")  # no write onto a full disk
    if what == "dump":
        assert sorted(p.name for p in (run / "embeddings").iterdir())[:1] == ["step-00000000"]
    monkeypatch.undo()
    _all_files_whole(run)  # nothing half-written, no temporary left
