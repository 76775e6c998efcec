import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_cli import REPO, run_main
from tiedtransformer.errors import ConfigError
from tiedtransformer.training.sweep import command, expand, load_sweep, run_local

SWEEPS = sorted((REPO / "sweeps").glob("*.yaml"))


def covering(runs: list[dict], categorical: int = 8) -> list[dict]:
    """Few of ``runs`` in which every value of every categorical parameter (at most ``categorical`` distinct
    values in the sweep) appears at least once, and the first run: each next run the one that adds the most
    values not seen yet (greedy set cover). Sampled numbers differ in every run: one of them shows the
    parameter reaches the CLI."""
    values = {k: {_hashable(v) for r in runs for v in [r[k]]} for k in runs[0]}
    wanted = {(k, v) for k, vs in values.items() if len(vs) <= categorical for v in vs}
    items = [{(k, _hashable(v)) for k, v in r.items()} & wanted for r in runs]
    out, seen = [runs[0]], set(items[0])
    while wanted - seen:
        best = max(range(len(runs)), key=lambda i: len(items[i] - seen))
        out.append(runs[best])
        seen |= items[best]
    return out


def _hashable(value) -> str:
    return json.dumps(value, sort_keys=True)


def test_covering_runs_hold_every_value_of_every_parameter_in_fewer_runs():
    runs = [{"a": a, "b": b, "c": [c]} for a in (1, 2, 3, 4) for b in ("x", "y") for c in (True, False)]
    chosen = covering(runs)
    assert len(chosen) <= 5 and all(c in runs for c in chosen)
    for key in ("a", "b", "c"):
        assert {json.dumps(r[key]) for r in chosen} == {json.dumps(r[key]) for r in runs}


@pytest.mark.slow
@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_every_sweep_is_a_valid_config_whose_commands_parse_through_the_cli(path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # sweep commands name configs relative to the repository
    sweep = load_sweep(path)
    assert sweep["metric"]["goal"] == "maximize" and sweep["metric"]["name"] in ("val/bleu", "final/test_bleu")
    runs = expand(sweep)
    assert runs
    for params in covering(runs):  # every value of every categorical parameter reaches the CLI once
        argv = command(sweep, params)
        assert argv[:3] == ["/usr/bin/env", "tiedtransformer", "fit"]
        code, out, err = run_main([*argv[2:], "--print_config"], capsys)
        assert code == 0, err[-1500:]
        config = yaml.safe_load(out)
        for key, value in params.items():  # every parameter reached LightningCLI, booleans included
            node = config
            for part in key.split("."):
                node = node[part]
            assert node == value, key


def test_the_tying_grid_covers_modes_directions_and_seeds():
    runs = expand(load_sweep(REPO / "sweeps/tying_modes.yaml"))
    assert len(runs) == 4 * 2 * 3
    assert {r["model.net.tying"] for r in runs} == {"none", "decoder", "src_tgt", "three_way"}
    assert {r["data.direction"] for r in runs} == {"en-de", "de-en"}


def test_the_seed_experiment_is_every_mode_both_directions_three_seeds_on_the_held_out_recipe(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    sweep = load_sweep(REPO / "sweeps/seed_experiment.yaml")
    runs = expand(sweep)
    assert len(runs) == 24 and runs[0]["seed_everything"] == runs[7]["seed_everything"]  # seeds vary slowest
    assert {(r["model.net.tying"], r["data.direction"], r["seed_everything"]) for r in runs} == {
        (t, d, s) for t in ("none", "decoder", "src_tgt", "three_way") for d in ("en-de", "de-en") for s in (1, 2, 3)
    }
    code, out, err = run_main([*command(sweep, runs[-1])[2:], "--print_config"], capsys)
    assert code == 0, err[-1500:]
    config = yaml.safe_load(out)
    assert config["data"]["test_holdout"] == 1000 and config["data"]["test_path"] is None
    assert config["data"]["train_path"].endswith("multi30k/train") and config["data"]["joint_vocab"] is True
    assert config["model"]["final_test"] is True and config["trainer"]["max_steps"] == 3000
    assert config["trainer"]["max_time"] is None and config["trainer"]["precision"] == "32-true"  # pinned
    assert config["model"]["optim"]["schedule"] == "linear" and config["model"]["optim"]["final_lr_factor"] == 0.0
    assert config["snapshot"]["at_start"] is True


def test_random_sweeps_sample_run_cap_runs_within_their_ranges():
    sweep = load_sweep(REPO / "sweeps/random_search.yaml")
    runs = expand(sweep, seed=1)
    assert len(runs) == sweep["run_cap"] and runs == expand(sweep, seed=1) and runs != expand(sweep, seed=2)
    assert all(3e-4 <= r["model.optim.lr"] <= 5e-3 and 50 <= r["model.optim.warmup_steps"] <= 800 for r in runs)
    assert {r["model.net.norm_first"] for r in runs} == {True, False}
    assert "--model.net.norm_first=True" in command(sweep, {"model.net.norm_first": True})  # as the agent writes it


def test_invalid_sweeps_are_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: grid\nparameters: {model.net.tying: {values: [none]}}\ncommand: [tiedtransformer, fit]\n")
    with pytest.raises(ConfigError, match="args"):
        load_sweep(bad)
    bad.write_text("method: hyperband\nparameters: {}\ncommand: [x]\n")
    with pytest.raises(ConfigError, match="grid, random or bayes"):
        load_sweep(bad)


def tiny_sweep(tmp_path, fail=False) -> Path:
    fixed = {
        "data.demo_train_size": 300,
        "data.demo_valid_size": 20,
        "data.vocab_size": 200,
        "data.vocab_sample_size": 300,
        "data.num_workers": 0,
        "model.net.d_model": 32,
        "model.net.n_heads": 2,
        "model.net.n_encoder_layers": 1,
        "model.net.n_decoder_layers": 1,
        "model.net.d_ff": 64,
        "model.decoding.max_len_b": 8,
        "model.val_bleu_sentences": 8,
        "model.final_test": True,
        "trainer.max_epochs": 1,
        "trainer.enable_progress_bar": False,
        "trainer.log_every_n_steps": 1,
        "run.wandb": "disabled",
        "similarity.analysis.top_k": 30,
    }
    params = {k: {"value": v} for k, v in fixed.items()}
    params["model.net.tying"] = {"values": ["none", "bogus" if fail else "three_way"]}
    sweep = {
        "name": "tiny",
        "method": "grid",
        "metric": {"name": "val/bleu", "goal": "maximize"},
        "parameters": params,
        "command": [
            sys.executable,
            "-m",
            "tiedtransformer",
            "fit",
            "--config",
            str(REPO / "configs/demo.yaml"),
            "${args}",
        ],
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


@pytest.mark.slow
def test_local_sweep_runs_then_skips_finished_runs(tiny_sweep_runs):
    import io

    run_dirs, text, path, cwd = tiny_sweep_runs  # run into <cwd>/elsewhere: not the working directory's runs/
    assert "[1/2] " in text and "[2/2] " in text and "all 2 runs finished" in text
    assert len(run_dirs) == 2 and not (cwd / "runs").exists()
    assert {json.loads((d / "summary.json").read_text())["tying"] for d in run_dirs} == {"none", "three_way"}

    again = io.StringIO()
    assert run_local(str(path), root=str(run_dirs[0].parent), out=again) == 0
    assert again.getvalue().count("already finished") == 2 and len(list(run_dirs[0].parent.iterdir())) == 2


@pytest.mark.slow
def test_a_failed_run_does_not_stop_the_sweep_and_is_listed(tmp_path):
    import io

    log = io.StringIO()
    assert run_local(str(tiny_sweep(tmp_path, fail=True)), root=str(tmp_path / "runs"), out=log) == 1
    text = log.getvalue()
    assert "FAILED (exit 2)" in text and "1 of 2 runs failed" in text and "model.net.tying=bogus" in text
    assert "[1/2] " in text and "ok in" in text


def test_dry_run_prints_the_agents_commands(capsys):
    code, out, _ = run_main(["sweep", str(REPO / "sweeps/demo_tying.yaml"), "--local", "--dry_run"], capsys)
    assert code == 0 and out.count("tiedtransformer fit --config configs/demo.yaml --model.net.tying=") == 8
    code, _, err = run_main(["sweep", str(REPO / "sweeps/demo_tying.yaml")], capsys)
    assert code == 2 and "wandb agent" in err and "--local" in err


def test_the_moved_dry_run_flag_is_named_without_a_value(capsys):
    code, _, err = run_main(["sweep", str(REPO / "sweeps/demo_tying.yaml"), "--local", "--dry-run"], capsys)
    assert code == 2 and "option --dry-run is now --dry_run" in err and "--dry_run=" not in err
