"""Every shipped config (``configs/**/*.yaml``) and every sweep's command (``sweeps/*.yaml``) runs end to end as
it is documented, not only parsed: ``fit`` for a few optimizer steps with the model shrunk, on data made here in
the config's own source format (hub parquet shards for the hub configs, text files for ``files``), through
validation at the config's own cadence (its kind of interval, a smaller number), a snapshot and the final
evaluation; then ``fit --ckpt_path last`` from the run's own config.yaml trains one more step.

A config or sweep added later is picked up without editing this file: a config's command is the first
``tiedtransformer fit`` line of its header comment that names it (so every config documents how it is used)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from tests.data_helpers import demo_texts, write_hub_repo, write_parallel
from tests.test_cli import REPO, run_main
from tiedtransformer.lightning_commands import _cli, _ParseOnly
from tiedtransformer.training.sweep import command, expand, load_sweep

CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))
SWEEPS = sorted((REPO / "sweeps").glob("*.yaml"))
STEPS = 5  # optimizer steps of the first leg; the resumed leg trains one more
VAL_EVERY = 2  # a config that validates every N steps (or batches) does so every 2 here
TRAIN_PAIRS, VALID_PAIRS = 60, 6  # a few batches an epoch: a config that validates per epoch trains one

SHRUNK = [
    "--model.net.d_model=32",
    "--model.net.n_heads=2",
    "--model.net.n_encoder_layers=1",
    "--model.net.n_decoder_layers=1",
    "--model.net.d_ff=64",
    "--data.vocab_size=120",
    "--data.vocab_sample_size=200",
    "--data.max_tokens=512",
    "--data.max_len=64",
    "--model.decoding.max_len_b=6",
    "--model.val_bleu_sentences=4",
    "--trainer.log_every_n_steps=1",
    "--trainer.enable_model_summary=false",
    "--trainer.enable_progress_bar=false",
    "--trainer.devices=1",  # fsdp.yaml documents 8 GPUs; two CPU processes are tests/test_fsdp.py's
    "--run.wandb=disabled",
]


def header(path: Path) -> list[str]:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return lines


def documented_command(path: Path) -> list[str]:
    """The ``-c`` files of the first ``tiedtransformer fit`` command in the config's header that names it."""
    rel = path.relative_to(REPO).as_posix()
    for line in header(path):
        if "tiedtransformer fit" in line:
            files = re.findall(r"(?:-c|--config)[ =](\S+\.yaml)", line)
            if rel in files:
                return [arg for f in files for arg in ("-c", str(REPO / f))]
    pytest.fail(f"{rel}: its header comment gives no `tiedtransformer fit ... -c {rel}` command line")


def sweep_command(path: Path) -> list[str]:
    """The sweep's command for its last parameter set (every parameter at its last value in a grid), as the
    agent runs it from the repository's root, with paths made absolute."""
    sweep = load_sweep(path)
    argv = command(sweep, expand(sweep)[-1])
    args = argv[argv.index("fit") + 1 :]
    return [str(REPO / a) if (REPO / a).is_file() else a for a in args]


CASES = [pytest.param(documented_command, c, id=c.relative_to(REPO).as_posix()) for c in CONFIGS] + [
    pytest.param(sweep_command, s, id=s.relative_to(REPO).as_posix()) for s in SWEEPS
]


def data_args(cfg, folder: Path) -> list[str]:
    """Options that point the config's source at data made here, in that source's own format."""
    d = cfg.data
    train, valid = demo_texts(TRAIN_PAIRS), demo_texts(VALID_PAIRS, "validation")
    if d.source == "demo":
        return [f"--data.demo_train_size={TRAIN_PAIRS}", f"--data.demo_valid_size={VALID_PAIRS}"]
    if d.source == "hub":
        splits = {d.train_split: train, d.valid_split: valid, d.test_split: demo_texts(VALID_PAIRS, "test")}
        repo = write_hub_repo(folder / "hub", d.hub_config or "default", splits)
        return [f"--data.hub_dataset={repo}", *([] if d.hub_config else ["--data.hub_config=default"])]
    assert d.source == "files", d.source
    args = [f"--data.train_path={write_parallel(folder / 'train', train)}"]
    args.append(f"--data.valid_path={write_parallel(folder / 'valid', valid)}")
    if d.test_path:
        args.append(f"--data.test_path={write_parallel(folder / 'test', demo_texts(VALID_PAIRS, 'test'))}")
    if d.test_holdout:
        args.append(f"--data.test_holdout={VALID_PAIRS}")
    return args


def budget_args(cfg, batches_per_update: int) -> tuple[list[str], list[int] | None]:
    """The first leg's length, and the config's kind of validation interval at a smaller number; with the
    optimizer steps validation runs at (None: at the end of the one epoch it trains)."""
    steps = [f"--trainer.max_steps={STEPS}"], list(range(VAL_EVERY, STEPS + 1, VAL_EVERY))
    if cfg.model.val_every_n_steps:
        return [*steps[0], f"--model.val_every_n_steps={VAL_EVERY}"], steps[1]
    if isinstance(cfg.trainer.val_check_interval, int):  # Lightning's own, in training batches
        return [*steps[0], f"--trainer.val_check_interval={VAL_EVERY * batches_per_update}"], steps[1]
    if cfg.trainer.val_check_interval not in (None, 1.0):
        pytest.fail(f"validation by wall time ({cfg.trainer.val_check_interval}): teach budget_args that cadence")
    return ["--trainer.max_steps=1000", "--trainer.max_epochs=1"], None  # a step budget for a linear schedule


def metric_rows(run: Path) -> list[dict]:
    rows = []
    for f in sorted(run.glob("version_*/metrics.csv")) or [run / "metrics.csv"]:
        with open(f, newline="") as fh:
            rows += list(csv.DictReader(fh))
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("document, path", CASES)
def test_shipped_config_runs_end_to_end_and_resumes(document, path, tmp_path, capsys):
    args = document(path)
    cfg = _cli(args, run=False, cls=_ParseOnly).config
    k = 2 if cfg.model.optim.tokens_per_update else 1  # gradient accumulation kept, at 2 batches of 512 tokens
    update = [f"--model.optim.tokens_per_update={512 * k}"] if k > 1 else []
    budget, val_steps = budget_args(cfg, k)
    root = tmp_path / "runs"
    code, out, err = run_main(
        [
            "fit",
            *args,
            *SHRUNK,
            *data_args(cfg, tmp_path / "data"),
            *update,
            *budget,
            f"--run.root={root}",
            "--run.name=shipped",
        ],
        capsys,
    )
    assert code == 0, err[-3000:]
    run = root / "shipped"
    summary = json.loads((run / "summary.json").read_text())
    steps = summary["global_step"]
    assert summary["status"] == "finished" and steps > 0
    if val_steps is None:  # one epoch, validated at its end
        assert summary["epochs"] == 1
    assert [v["step"] for v in summary["val_bleu_by_validation"]] == (val_steps or [steps]), out[-2000:]
    assert any(r.get("val/loss") for r in metric_rows(run))
    assert (run / "embeddings" / "step-00000000").is_dir() and (run / "embeddings" / f"step-{steps:08d}").is_dir()
    tgt = cfg.data.direction.split("-")[1]
    assert summary["final_val_sentences"] == VALID_PAIRS
    assert len((run / f"final-val.{tgt}").read_text(encoding="utf-8").splitlines()) == VALID_PAIRS
    if cfg.model.final_test:
        assert summary["final_test_sentences"] == VALID_PAIRS and summary["final_test_bleu_ci"] is not None

    more = [f"--trainer.max_steps={steps + 1}", *([] if val_steps else ["--trainer.max_epochs=2"])]
    code, out, err = run_main(["fit", "-c", str(run / "config.yaml"), "--ckpt_path=last", *more], capsys)
    assert code == 0, err[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["global_step"] == steps + 1


def _leaves(tree, prefix=()):
    if isinstance(tree, dict) and tree:
        for k, v in tree.items():
            yield from _leaves(v, (*prefix, str(k)))
    else:
        yield prefix, tree


def _at(cfg, keys):
    for k in keys:
        cfg = cfg[k] if isinstance(cfg, dict) else getattr(cfg, k)
    return cfg


# keys a config states on purpose where the layers below already give them (None: every key), with the reason
PINNED = {
    "configs/tying/none.yaml": None,  # names one choice for a sweep or an override, also where it is the default
    "configs/tying/src_tgt.yaml": {"data.joint_vocab"},  # the mode needs it, whatever config it is laid on
    "configs/tying/three_way.yaml": {"data.joint_vocab"},
    "configs/seed_experiment.yaml": None,  # its header: every setting that decides a run is pinned for reruns
    "configs/multi30k.yaml": {"model.net.dropout"},  # a tuned value of the recipe, kept if the default moves
}


@pytest.mark.parametrize(
    "path", [c for c in CONFIGS if PINNED.get(c.relative_to(REPO).as_posix(), ()) is not None], ids=str
)
def test_a_shipped_config_sets_nothing_that_is_already_so(path):
    """Each key of a config changes what the layers below it (the code defaults and the configs before it
    in its documented command) would give: a restated default goes stale when the code's default moves."""
    import yaml

    args = documented_command(path)
    below = args[: args.index(str(path)) - 1]  # the -c files before this one
    base = _cli(below, run=False, cls=_ParseOnly).config
    restated = []
    for keys, value in _leaves(yaml.safe_load(path.read_text(encoding="utf-8")) or {}):
        try:
            was = _at(base, keys)
        except (AttributeError, KeyError, TypeError):
            continue  # a key the parser fills in otherwise (class_path/init_args): not comparable here
        if was == value and ".".join(keys) not in PINNED.get(path.relative_to(REPO).as_posix(), ()):
            restated.append(f"{'.'.join(keys)}: {value!r}")
    assert not restated, f"{path.relative_to(REPO)} restates what is already so: {restated}"


def test_the_seed_experiment_pins_every_option_that_decides_what_a_run_learns():
    """A rerun of a grid point from configs/multi30k.yaml + configs/seed_experiment.yaml gives the same run even
    after the recipe or a code default moves: every option of the network, the objective, the optimizer, the
    decoding, the data and the budget is stated (the sweep sets tying, direction and seed; paths of no
    consequence, such as the cache or the worker count, are left out)."""
    import dataclasses

    import yaml

    from tiedtransformer.model.network import TransformerConfig
    from tiedtransformer.training.options import DecodeConfig, OptimConfig

    pinned = {".".join(k) for k, _ in _leaves(yaml.safe_load((REPO / "configs/seed_experiment.yaml").read_text()))}
    free = {"model.net.tying", "model.net.vocab_size", "model.net.joint_vocab", "model.optim.fused_loss"}
    wanted = {f"model.net.{f.name}" for f in dataclasses.fields(TransformerConfig)}
    wanted |= {f"model.optim.{f.name}" for f in dataclasses.fields(OptimConfig)}
    wanted |= {f"model.decoding.{f.name}" for f in dataclasses.fields(DecodeConfig)}
    wanted |= {f"data.{k}" for k in ("source", "train_path", "valid_path", "test_path", "test_holdout", "seed")}
    wanted |= {f"data.{k}" for k in ("vocab_size", "joint_vocab", "vocab_sample_size", "vocab_max_scan")}
    wanted |= {f"data.{k}" for k in ("character_coverage", "max_tokens", "max_len", "shuffle_buffer", "bucket_buffer")}
    wanted |= {f"trainer.{k}" for k in ("precision", "max_steps", "max_time", "gradient_clip_val")}
    wanted |= {"trainer.accumulate_grad_batches", "model.val_bleu_sentences", "model.val_decode"}
    missing = sorted(wanted - free - pinned)
    assert not missing, f"configs/seed_experiment.yaml leaves {missing} to the layers below"
