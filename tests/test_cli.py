import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_FIT
from tests.probes import RunsCode
from tiedtransformer.cli import main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))
BASE_CONFIGS = [c for c in CONFIGS if c.parent.name == "configs"]
OVERRIDES = [c for c in CONFIGS if c.parent.name != "configs"]


def run_main(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
        raise SystemExit(0)
    out = capsys.readouterr()
    return exit_info.value.code or 0, out.out, out.err


@pytest.mark.parametrize(
    "tying, unique", [("none", 101.0e6), ("decoder", 82.0e6), ("src_tgt", 82.0e6), ("three_way", 63.1e6)]
)
def test_info_reports_unique_params_and_shared_storage(tying, unique, capsys):
    # a corpus that does not exist: info must not load data
    args = [
        "info",
        "-c",
        str(REPO / "configs/wmt14_en_de.yaml"),
        f"--model.net.tying={tying}",
        "--data.source=files",
        "--data.train_path=/nonexistent/train",
    ]
    code, out, _ = run_main(args, capsys)
    report = json.loads(out)
    assert code == 0
    assert report["unique_params"] == pytest.approx(unique, rel=0.01)
    assert report["untied_params"] == pytest.approx(101.0e6, rel=0.01)
    assert {m["shape"][0] for m in report["matrices"].values()} == {37000}
    shares = {name: set(m["shares_storage_with"]) for name, m in report["matrices"].items()}
    if tying == "three_way":
        assert shares["enc_embed"] == {"dec_embed", "dec_lut"}
    elif tying == "decoder":
        assert shares == {"enc_embed": set(), "dec_embed": {"dec_lut"}, "dec_lut": {"dec_embed"}}
    elif tying == "src_tgt":
        assert shares["dec_lut"] == set() and shares["enc_embed"] == {"dec_embed"}
    else:
        assert all(not s for s in shares.values())


def test_impossible_tying_is_rejected_with_the_options_to_change(capsys):
    code, out, err = run_main(["info", "--model.net.tying=three_way", "--data.joint_vocab=false"], capsys)
    assert code == 2 and not out
    assert "data.joint_vocab=true" in err and "model.net.tying" in err and "Traceback" not in err


def test_unknown_tying_and_direction_list_the_valid_values(capsys):
    code, _, err = run_main(["info", "--model.net.tying=all"], capsys)
    assert code == 2 and "none" in err and "three_way" in err and "model.net.tying" in err
    code, _, err = run_main(["info", "--data.direction=en-fr"], capsys)
    assert code == 2 and "en-de" in err and "de-en" in err


def test_unknown_command(capsys):
    code, _, err = run_main(["train"], capsys)
    assert code == 2 and "fit" in err


@pytest.mark.parametrize("config", BASE_CONFIGS, ids=lambda p: p.name)
def test_every_base_config_parses(config, capsys):
    code, out, _ = run_main(["fit", "-c", str(config), "--print_config"], capsys)
    assert code == 0 and "model:" in out and "data:" in out


@pytest.mark.parametrize("override", OVERRIDES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_override_parses_on_top_of_the_wmt_config(override, capsys):
    code, out, _ = run_main(
        ["fit", "-c", str(REPO / "configs/wmt14_en_de.yaml"), "-c", str(override), "--print_config"], capsys
    )
    assert code == 0 and f"tying: {override.stem}" in out


@pytest.mark.slow
def test_fast_dev_run_of_the_demo_config(tmp_path, capsys):
    code, out, _ = run_main(
        [
            "fit",
            "-c",
            str(REPO / "configs/demo.yaml"),
            "--trainer.fast_dev_run=true",
            "--run.wandb=disabled",
            "--data.demo_train_size=2000",
            "--data.vocab_sample_size=2000",
            "--data.num_workers=0",
            "--model.val_bleu_sentences=4",
            "--model.decoding.max_len_b=5",
        ],
        capsys,
    )
    assert code == 0
    run_dir = Path(out.split("run directory: ")[1].split()[0])
    assert (run_dir / "summary.json").is_file()


@pytest.mark.slow
def test_fit_writes_the_run_directory_then_predict_translates(tmp_path, capsys):
    code, out, _ = run_main(["fit", *TINY_FIT, "--run.root", str(tmp_path / "runs"), "--run.name=tiny"], capsys)
    assert code == 0
    run_dir = tmp_path / "runs" / "tiny"
    assert out.count(f"run directory: {run_dir}") == 2  # at start and at end
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in (
        "tying",
        "direction",
        "vocab_size",
        "unique_params",
        "embedding_params",
        "best_val_bleu",
        "final_val_loss",
        "train_tokens_per_s",
        "wall_s",
        "epochs",
        "sacrebleu_signature",
    ):
        assert summary[key] is not None, key
    assert summary["epochs"] == 1 and summary["status"] == "finished" and isinstance(summary["seed"], int)
    assert summary["sacrebleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert any(r["val/bleu"] for r in rows) and any(r["train/loss"] for r in rows)
    assert (run_dir / "config.yaml").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()

    for command in ("validate", "test"):
        code, out, _ = run_main(
            [
                command,
                "-c",
                str(run_dir / "config.yaml"),
                "--ckpt_path",
                str(run_dir / "checkpoints" / "last.ckpt"),
                "--trainer.logger=false",
            ],
            capsys,
        )
        assert code == 0, command
    # test prints BLEU and chrF of the whole test set with both signatures
    assert "test: BLEU " in out and " chrF " in out and "on 20 sentences (beam 4" in out
    assert "nrefs:1|case:mixed|eff:no|tok:13a" in out and "nrefs:1|case:mixed|eff:yes|nc:6|nw:0" in out

    lines = ["The dog sees the cat.", "My children sleep today.", "A big horse carries the book."]
    src = tmp_path / "input.en"
    src.write_text("\n".join(lines) + "\n")
    code, out, _ = run_main(
        [
            "predict",
            "-c",
            str(run_dir / "config.yaml"),
            "--ckpt_path",
            str(run_dir / "checkpoints" / "last.ckpt"),
            f"--data.predict_path={src}",
            "--trainer.logger=false",
        ],
        capsys,
    )
    assert code == 0
    assert len((tmp_path / "input.en.de").read_text().splitlines()) == len(lines)


@pytest.mark.slow
def test_wandb_offline_run_without_a_key_or_network(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    args = [a for a in TINY_FIT if not a.startswith("--run.wandb")]
    code, out, _ = run_main(
        [
            "fit",
            *args,
            "--run.root",
            str(tmp_path / "runs"),
            "--run.name=w",
            "--seed_everything=7",
            "--model.net.tying=three_way",
            "--run.wandb_group=grid-a",
            "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1",
        ],
        capsys,
    )
    assert code == 0
    assert "W&B: offline (no W&B API key" in out and "wandb sync" in out
    (record,) = (tmp_path / "runs" / "w" / "wandb").glob("offline-run-*/run-*.wandb")
    # the run's name in W&B says what it is (the directory name "w" stays in its config, run.name)
    data = record.read_bytes()
    assert (
        b"en-de-three_way-s7" in data
        and b"tying:three_way" in data
        and b"direction:en-de" in data
        and b"grid-a" in data
    )


def test_console_entry_points():
    for cmd in (["tiedtransformer"], [sys.executable, "-m", "tiedtransformer"]):
        exe = cmd if cmd[0] != "tiedtransformer" else [str(Path(sys.executable).parent / "tiedtransformer")]
        out = subprocess.run([*exe, "--help"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "fit" in out.stdout and "info" in out.stdout


PLAIN = ["analyze", "average", "sweep", "compare", "export", "translate"]


@pytest.mark.parametrize("command", [None, *PLAIN])
def test_help_and_the_plain_commands_start_without_torch_or_lightning(command):
    probe = (
        "import sys\n"
        "from tiedtransformer.cli import main\n"
        f"try:\n    main({[c for c in (command, '--help') if c]!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage: tiedtransformer" in out.stdout and out.stdout.strip().endswith("[]"), out.stdout[-300:]


def test_one_table_holds_every_command_and_a_list_argument_is_read_from_the_signature():
    from tiedtransformer import plain_commands
    from tiedtransformer.cli import COMMANDS
    from tiedtransformer.plain_commands import variadic_argument

    assert [c for c in COMMANDS if COMMANDS[c].__module__ == plain_commands.__name__] == PLAIN
    assert {c: variadic_argument(COMMANDS[c]) for c in PLAIN if variadic_argument(COMMANDS[c])} == {
        "analyze": "paths",
        "average": "paths",
        "compare": "runs",
    }

    def new(items: list[str], flag: bool = False) -> None:
        """A command added later."""

    assert variadic_argument(new) == "items"


@pytest.mark.slow
def test_messy_corpus_trains_and_reports_what_it_skipped(tmp_path, capsys):
    from tests.data_helpers import demo_texts

    good = demo_texts(200)
    en = "\ufeff" + "".join(p["en"] + "\r\n" for p in good) + "\n   \nword " * 1 + "x " * 300 + "\n"
    de = "".join(p["de"] + "\r\n" for p in good) + "leer\nleer\n" + "lang\n"
    (tmp_path / "c.en").write_bytes(en.encode())
    (tmp_path / "c.de").write_bytes(de.encode())
    assert len(en.splitlines()) == len(de.splitlines())
    args = [a for a in TINY_FIT if not a.startswith(("--data.source", "--data.demo"))]
    code, out, err = run_main(
        [
            "fit",
            *args,
            "--data.source=files",
            f"--data.train_path={tmp_path / 'c'}",
            f"--data.valid_path={tmp_path / 'c'}",
            "--run.root",
            str(tmp_path / "runs"),
            "--run.name=m",
        ],
        capsys,
    )
    assert code == 0, err[-2000:]
    assert "data: skipped" in out
    summary = json.loads((tmp_path / "runs" / "m" / "summary.json").read_text())
    assert summary["filtered_pairs_per_epoch"] == {"empty": 2, "too_long": 1, "invalid_utf8": 0}


def test_mismatched_parallel_files_fail_before_training(tmp_path, capsys):
    (tmp_path / "c.en").write_text("a\nb\nc\n")
    (tmp_path / "c.de").write_text("a\nb\n")
    args = [a for a in TINY_FIT if not a.startswith(("--data.source", "--data.demo"))]
    code, _, err = run_main(
        [
            "fit",
            *args,
            "--data.source=files",
            f"--data.train_path={tmp_path / 'c'}",
            "--run.root",
            str(tmp_path / "runs"),
        ],
        capsys,
    )
    en, de = tmp_path / "c.en", tmp_path / "c.de"
    assert err.strip().splitlines() == [
        f"error: parallel files differ in length: {en} has 3 lines, {de} has 2; line N of each must translate the other"
    ]
    assert code == 2 and not list((tmp_path / "runs").rglob("*.ckpt"))  # nothing trained


@pytest.mark.parametrize(
    "row, what",
    [
        ('{"en": "a dog", "de": 3}', "expected a JSON object with string values"),
        ('{"en": "a dog"}', "expected a JSON object with string values"),
        ('{"en": "a \\ud800 dog", "de": "ein Hund"}', "a string holds a lone surrogate"),
    ],
)
@pytest.mark.slow
def test_a_bad_corpus_line_is_named_by_file_and_line(tmp_path, capsys, row, what):
    from tests.data_helpers import demo_texts

    good = [json.dumps(p) for p in demo_texts(40)]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join(good[:6] + [row] + good[6:]) + "\n")
    args = [a for a in TINY_FIT if not a.startswith(("--data.source", "--data.demo"))]
    code, _, err = run_main(
        ["fit", *args, "--data.source=files", f"--data.train_path={corpus}", f"--run.root={tmp_path / 'runs'}"], capsys
    )
    last = err.strip().splitlines()[-1]
    assert code == 2 and "Traceback" not in err
    assert last.startswith(f"error: {corpus}:7: {what}"), err[-2000:]


def test_a_disk_too_full_for_the_checkpoints_fails_before_training(tmp_path, capsys, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 4096, 4096))
    code, out, err = run_main(["fit", *TINY_FIT, "--run.root", str(tmp_path / "runs"), "--run.name=full"], capsys)
    assert code == 2 and "GiB free" in err and "--run.root" in err and "Traceback" not in err
    assert not list((tmp_path / "runs" / "full").glob("checkpoints/*.ckpt"))
    assert not (tmp_path / "runs" / "full" / "metrics.csv").exists()  # no step was trained


def test_trainer_options_that_do_not_go_together_are_named_without_a_traceback(tmp_path, capsys):
    code, out, err = run_main(
        [
            "fit",
            *TINY_FIT,
            "--trainer.devices=abc",
            "--trainer.accelerator=cpu",
            "--run.root",
            str(tmp_path / "runs"),
            "--run.name=bad",
        ],
        capsys,
    )
    assert code == 2 and "Traceback" not in err
    assert "--trainer.devices" in err and "CPUAccelerator" in err and "config file" in err
    assert not (tmp_path / "runs" / "bad").exists()  # nothing ran, no empty run directory is left


def test_fsdp1_points_to_the_supported_fsdp_config(tmp_path, capsys):
    code, _, err = run_main(
        ["fit", *TINY_FIT, "--trainer.strategy=fsdp", "--run.root", str(tmp_path / "runs"), "--run.name=f"], capsys
    )
    assert code == 2 and "Traceback" not in err and "-c configs/fsdp.yaml" in err and "--trainer.strategy=ddp" in err
    assert not (tmp_path / "runs" / "f").exists()


def test_the_fsdp_config_composes_with_the_wmt_config(capsys):
    code, out, _ = run_main(
        [
            "fit",
            "-c",
            str(REPO / "configs/wmt14_en_de.yaml"),
            "-c",
            str(REPO / "configs/fsdp.yaml"),
            "--trainer.devices=8",
            "--print_config",
        ],
        capsys,
    )
    assert code == 0 and "ModelParallelStrategy" in out and "save_distributed_checkpoint: false" in out
    assert "tokens_per_update: 25000" in out and "val_every_n_steps: 1500" in out  # the WMT settings stay


@pytest.mark.slow
def test_averaged_checkpoints_work_as_any_checkpoint(tmp_path, capsys):
    """fit keeps the last N checkpoints and ends on their average; `average` makes the same file from the
    run directory; predict, test, analyze and --ckpt_path take it; a tied matrix stays one tensor."""
    import torch

    from tiedtransformer.training.averaging import average_state_dicts

    root = tmp_path / "runs"
    code, out, err = run_main(
        [
            "fit",
            *TINY_FIT,
            "--model.net.tying=three_way",
            "--trainer.max_epochs=3",
            "--average.last=2",
            "--run.root",
            str(root),
            "--run.name=avg",
        ],
        capsys,
    )
    assert code == 0, err
    run_dir = root / "avg"
    kept = sorted((run_dir / "checkpoints" / "kept").glob("*.ckpt"))
    assert len(kept) == 2 and "averaged 2 checkpoints" in out
    load = lambda p: torch.load(p, map_location="cpu", weights_only=True)  # noqa: E731
    averaged = load(run_dir / "checkpoints" / "averaged.ckpt")
    expected = average_state_dicts([load(p)["state_dict"] for p in kept])
    for k, v in expected.items():
        torch.testing.assert_close(averaged["state_dict"][k], v)
    sd = averaged["state_dict"]
    assert (
        sd["net.enc_embed.weight"].data_ptr()
        == sd["net.dec_embed.weight"].data_ptr()
        == sd["net.dec_lut.weight"].data_ptr()
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["final_weights"].startswith("average of 2 checkpoints") and summary["final_val_bleu"] is not None

    code, out, err = run_main(["average", str(run_dir), "--last", "2", "--out", str(tmp_path / "again.ckpt")], capsys)
    assert code == 0, err
    for k, v in load(tmp_path / "again.ckpt")["state_dict"].items():
        assert torch.equal(v, sd[k])
    code, _, err = run_main(["average", str(run_dir), "--last", "9"], capsys)
    assert code == 2 and "fewer than --last 9" in err and "Traceback" not in err

    ckpt = str(run_dir / "checkpoints" / "averaged.ckpt")
    code, out, err = run_main(
        ["test", "-c", str(run_dir / "config.yaml"), "--ckpt_path", ckpt, "--trainer.logger=false"], capsys
    )
    assert code == 0 and f"test: BLEU {summary['final_val_bleu']:.2f}" in out  # the test set is the validation set here
    src = tmp_path / "input.en"
    src.write_text("The dog sees the cat.\n\nA big horse carries the book.\n")
    code, _, err = run_main(
        [
            "predict",
            "-c",
            str(run_dir / "config.yaml"),
            "--ckpt_path",
            ckpt,
            f"--data.predict_path={src}",
            "--trainer.logger=false",
        ],
        capsys,
    )
    assert code == 0, err
    assert len((tmp_path / "input.en.de").read_text().splitlines()) == 3
    code, out, err = run_main(["analyze", ckpt, "--analysis.top_k", "5", "--out", str(tmp_path / "analysis")], capsys)
    assert code == 0 and (tmp_path / "analysis" / "similarity.json").is_file(), err
    code, _, err = run_main(
        ["fit", "-c", str(run_dir / "config.yaml"), "--ckpt_path", ckpt, "--trainer.max_epochs=4"], capsys
    )
    assert code == 0, err


@pytest.mark.parametrize(
    "args,new",
    [
        (["fit", "--model.tying=none"], "--model.net.tying"),
        (["fit", "--model.lr", "1e-3"], "--model.optim.lr"),
        (["predict", "--model.beam_size=5"], "--model.decoding.beam_size"),
        (["fit", "--similarity.top_k=5"], "--similarity.analysis.top_k"),
        (["analyze", "x", "--top-k", "5"], "--analysis.top_k"),
    ],
)
def test_a_moved_option_is_named_with_its_new_key(args, new, capsys):
    code, out, err = run_main(args, capsys)
    assert code == 2 and f"is now {new}" in err and "Traceback" not in err


def test_a_moved_key_in_a_config_file_is_named_with_its_nesting(tmp_path, capsys):
    (tmp_path / "old.yaml").write_text("model:\n  tying: three_way\n  warmup_steps: 100\n")
    code, _, err = run_main(["fit", "-c", str(tmp_path / "old.yaml")], capsys)
    assert code == 2 and "model: {net: {tying: ...}}" in err and "Traceback" not in err


def test_a_config_file_that_is_not_a_mapping_is_an_error_not_a_traceback(tmp_path, capsys):
    (tmp_path / "list.yaml").write_text("- model\n- data\n")
    code, _, err = run_main(["fit", "-c", str(tmp_path / "list.yaml")], capsys)
    assert code == 2 and "Traceback" not in err


def _bad_checkpoint(tmp_path, kind: str) -> Path:
    import torch

    path = tmp_path / f"{kind}.ckpt"
    good = {"state_dict": {"net.w": torch.zeros(3)}, "hyper_parameters": {"net": {"tying": "none"}}}
    if kind == "crafted":
        torch.save({**good, "payload": RunsCode(tmp_path / "PWNED")}, path)
    elif kind == "truncated":
        torch.save(good, path)
        path.write_bytes(path.read_bytes()[:300])
    else:
        path.write_bytes(b"")
    return path


@pytest.mark.parametrize("kind", ["crafted", "truncated", "empty"])
@pytest.mark.parametrize("command", ["analyze", "average", "fit", "validate", "test", "predict"])
def test_a_bad_checkpoint_ends_every_command_in_one_line_naming_it(tmp_path, capsys, command, kind):
    ckpt = _bad_checkpoint(tmp_path, kind)
    if command == "analyze":
        args = ["analyze", str(ckpt)]
    elif command == "average":
        args = ["average", str(ckpt), str(ckpt), "--out", str(tmp_path / "avg.ckpt")]
    else:
        args = [command, *TINY_FIT, f"--run.root={tmp_path / 'runs'}", f"--ckpt_path={ckpt}"]
        args += ["--data.predict_path=nowhere.txt"] if command == "predict" else []
    code, out, err = run_main(args, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err
    assert lines[-1].startswith(f"error: {ckpt}: ") and len(lines) == 1, err
    expected = {"crafted": "refused: it holds a reference to posix.system", "truncated": "not a complete checkpoint"}
    assert expected.get(kind, "the file is empty (0 bytes)") in lines[-1]
    assert not (tmp_path / "PWNED").exists()  # nothing in the file ran
    assert not (tmp_path / "runs").exists() and not (tmp_path / "avg.ckpt").exists()  # nothing started


def test_weights_only_false_is_refused(tmp_path, capsys):
    code, _, err = run_main(["test", *TINY_FIT, "--weights_only=false", "--ckpt_path=x.ckpt"], capsys)
    assert code == 2 and "--weights_only=false" in err and "data only" in err


def test_the_entry_point_freezes_what_is_alive_before_exit(monkeypatch):
    """``run`` (the script and ``python -m``) freezes the objects alive after the command, so the
    interpreter's last collection at exit skips them (a third of a second after importing torch)."""
    import gc

    from tiedtransformer import cli

    monkeypatch.setattr(cli, "main", lambda: None)
    assert gc.get_freeze_count() == 0
    try:
        cli.run()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(
    "option, named",
    [
        ("--trainer.val_check_interval=0.25", "model.val_every_n_steps=N"),
        ("--trainer.val_check_interval=0.0", "model.val_every_n_steps=N"),
        ("--trainer.limit_train_batches=0.5", "an int"),
        ("--trainer.limit_val_batches=0.1", "an int"),
        ("--trainer.overfit_batches=0.01", "an int"),
    ],
)
def test_a_fraction_of_a_streamed_set_is_refused_before_anything_is_built(option, named, tmp_path, capsys):
    # the WMT config as shipped before: every source streams, and Lightning stopped at its first step
    code, out, err = run_main(
        ["fit", "-c", str(REPO / "configs/wmt14_en_de.yaml"), option, "--run.root", str(tmp_path / "runs")], capsys
    )
    assert code == 2 and "Traceback" not in err and option[2:].split("=")[0] in err and named in err
    assert "training a" not in out and not (tmp_path / "runs").exists()  # no vocabulary, no run directory


@pytest.mark.parametrize(
    "options, named",
    [
        (["--model.val_every_n_steps=10", "--trainer.val_check_interval=30"], "keep one"),
        (["--model.val_every_n_steps=10", "--trainer.val_check_interval=1"], "keep one"),  # 1 batch, not 1.0
        (["--model.val_every_n_steps=10", "--trainer.check_val_every_n_epoch=2"], "trainer.check_val_every_n_epoch"),
        (["--model.val_every_n_steps=0"], ">= 1"),
    ],
)
def test_validation_every_n_steps_refuses_options_that_contradict_it(options, named, capsys):
    code, _, err = run_main(["fit", *TINY_FIT, *options], capsys)
    assert code == 2 and "Traceback" not in err and "model.val_every_n_steps" in err and named in err


@pytest.mark.parametrize(
    "data, batches_per_step, epochs",
    [
        (["--data.demo_train_size=80", "--data.max_tokens=256"], 1, 2),  # epochs of a few steps: counts go on
        # with accumulation, across epochs of an odd number of batches too: every epoch ends on a whole update
        (["--data.demo_train_size=80", "--data.max_tokens=256", "--model.optim.tokens_per_update=512"], 2, 2),
    ],
)
@pytest.mark.slow
def test_validation_every_n_steps_counts_optimizer_steps(data, batches_per_step, epochs, tmp_path, capsys):
    # Lightning's interval counts training batches: it is N x the accumulation, and it counts across epoch
    # boundaries (check_val_every_n_epoch=None) instead of starting again in each epoch
    args = [a for a in TINY_FIT if not a.startswith("--trainer.max_epochs")]
    code, out, err = run_main(
        [
            "fit",
            *args,
            *data,
            "--model.val_every_n_steps=3",
            "--trainer.max_steps=10",
            "--trainer.max_epochs=5",
            "--run.root",
            str(tmp_path / "runs"),
            "--run.name=every3",
        ],
        capsys,
    )
    assert code == 0, err[-2000:]
    assert f"validation: every 3 optimizer steps ({3 * batches_per_step} training batches)" in out
    summary = json.loads((tmp_path / "runs" / "every3" / "summary.json").read_text())
    assert summary["epochs"] >= epochs
    assert [v["step"] for v in summary["val_bleu_by_validation"]] == [3, 6, 9]


@pytest.mark.slow
def test_a_batch_interval_longer_than_a_streamed_epoch_is_named_at_the_first_epochs_end(tmp_path, capsys):
    # a sized training set this short would be refused by Lightning up front; a stream's length is known only
    # after an epoch, when the run says that no epoch can validate and what to use instead
    code, _, err = run_main(
        ["fit", *TINY_FIT, "--trainer.val_check_interval=1000", "--run.root", str(tmp_path / "runs"), "--run.name=v"],
        capsys,
    )
    assert code == 0 and err.count("no validation ran in this epoch") == 1
    assert "trainer.val_check_interval=1000" in err and "model.val_every_n_steps" in err
    assert json.loads((tmp_path / "runs" / "v" / "summary.json").read_text())["val_bleu_by_validation"] == []


@pytest.mark.slow
def test_options_of_other_commands_streams_do_not_stop_a_command(tmp_path, capsys):
    # a fraction of the training set means nothing to `validate`: it is not refused there; the test set's is, in `test`
    code, _, err = run_main(["test", *TINY_FIT, "--trainer.limit_test_batches=0.5"], capsys)
    assert code == 2 and "trainer.limit_test_batches=0.5" in err
    code, _, err = run_main(
        ["validate", *TINY_FIT, "--trainer.limit_train_batches=0.5", "--trainer.limit_val_batches=2"], capsys
    )
    assert "limit_train_batches" not in err
