import os

import pytest

from tiedtransformer.errors import ConfigError
from tiedtransformer.run.files import RunDir
from tiedtransformer.run.plan import (
    RESUMING_ENV,
    RUN_DIR_ENV,
    RUN_NAME_ENV,
    RunRequest,
    decide_wandb_mode,
    resolve,
    wandb_api_key,
)

yes, no = (lambda: True), (lambda: False)


def never():
    raise AssertionError("should not be asked")


@pytest.mark.parametrize(
    "requested, env, has_key, reachable, expected",
    [
        ("auto", {}, no, never, "offline"),
        ("auto", {}, yes, no, "offline"),
        ("auto", {}, yes, yes, "online"),
        ("auto", {"WANDB_MODE": "disabled"}, never, never, "disabled"),
        ("online", {"WANDB_MODE": "offline"}, never, never, "offline"),
        ("offline", {}, never, never, "offline"),
        ("disabled", {}, never, never, "disabled"),
    ],
)
def test_wandb_mode_is_decided_before_init(requested, env, has_key, reachable, expected):
    mode, reason = decide_wandb_mode(requested, env=env, has_key=has_key, reachable=reachable)
    assert mode == expected and reason


def test_wandb_key_from_env_or_netrc(tmp_path):
    assert wandb_api_key({"WANDB_API_KEY": "k"}) == "k"
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password secret\n")
    os.chmod(netrc, 0o600)
    assert wandb_api_key({"NETRC": str(netrc)}) == "secret"
    assert wandb_api_key({"NETRC": str(tmp_path / "none")}) is None


# --- resolve(): where a fit's run directory is, decided from its config and environment alone ---

NOW = 1e9  # a fixed clock: 2001-09-09


def _run(tmp_path, name: str, with_config: bool = True) -> RunDir:
    run = RunDir(tmp_path / "runs" / name)
    run.checkpoints.mkdir(parents=True)
    if with_config:
        run.config.write_text("run: {}\n")
    (run.checkpoints / "last.ckpt").write_bytes(b"")
    return run


def test_a_new_run_gets_a_directory_named_after_its_tying_and_direction(tmp_path):
    plan = resolve(RunRequest(root=str(tmp_path), tying="three_way", direction="de-en"), {}, now=NOW)
    assert plan.create and not plan.resuming and not plan.placeholder
    assert plan.run_dir.path.parent == tmp_path and plan.run_dir.name.endswith("-three_way-de-en")
    assert not plan.run_dir.path.exists()  # resolve decides; it creates nothing
    assert plan.env == {RUN_DIR_ENV: str(plan.run_dir.path), RESUMING_ENV: "0"}


def test_the_run_name_comes_from_the_option_then_the_sweep(tmp_path):
    named = resolve(RunRequest(root=str(tmp_path), name="mine"), {RUN_NAME_ENV: "sweep-1"})
    swept = resolve(RunRequest(root=str(tmp_path)), {RUN_NAME_ENV: "sweep-1"})
    assert (named.run_dir.name, swept.run_dir.name) == ("mine", "sweep-1")


def test_a_checkpoint_inside_a_run_resumes_that_run_and_one_from_elsewhere_starts_a_new_one(tmp_path):
    run = _run(tmp_path, "old")
    plan = resolve(RunRequest(root=str(tmp_path / "runs"), ckpt_path=str(run.checkpoints / "last.ckpt")), {})
    assert plan.resuming and not plan.create and plan.run_dir.path == run.path.resolve()
    loose = tmp_path / "downloaded.ckpt"
    loose.write_bytes(b"")
    plan = resolve(RunRequest(root=str(tmp_path / "runs"), name="new", ckpt_path=str(loose)), {})
    assert plan.create and not plan.resuming and plan.run_dir.name == "new"
    with pytest.raises(ConfigError, match="--ckpt_path nowhere.ckpt: no such checkpoint file"):
        resolve(RunRequest(ckpt_path="nowhere.ckpt"), {})


def test_ckpt_path_last_resumes_the_named_run_and_says_what_it_needs_otherwise(tmp_path):
    run = _run(tmp_path, "x")
    plan = resolve(RunRequest(root=str(tmp_path / "runs"), name="x", ckpt_path="last"), {})
    assert plan.resuming and plan.run_dir.path == run.path and plan.env[RESUMING_ENV] == "1"
    with pytest.raises(ConfigError, match="--ckpt_path last resumes the run named by --run.name"):
        resolve(RunRequest(root=str(tmp_path / "runs"), ckpt_path="last"), {})
    with pytest.raises(ConfigError, match="has no checkpoints/ folder"):
        resolve(RunRequest(root=str(tmp_path / "runs"), name="y", ckpt_path="last"), {})


def test_processes_started_by_rank_zero_take_its_directory_and_another_node_writes_nothing(tmp_path):
    env = {"LOCAL_RANK": "1", RUN_DIR_ENV: str(tmp_path / "r0"), RESUMING_ENV: "1"}
    plan = resolve(RunRequest(root=str(tmp_path)), env)
    assert plan.run_dir.path == tmp_path / "r0" and plan.resuming and not plan.create and not plan.placeholder
    other_node = resolve(RunRequest(root=str(tmp_path), name="n"), {"NODE_RANK": "1"})
    assert other_node.placeholder and not other_node.create and other_node.env == {}


@pytest.mark.parametrize(
    "option,field",
    [("trainer.default_root_dir", "default_root_dir"), ("checkpoint.dirpath", "checkpoint_dirpath")],
)
def test_a_setting_the_run_directory_decides_is_refused_not_replaced(tmp_path, option, field):
    with pytest.raises(ConfigError, match=rf"--{option}=elsewhere: a fit's files go to its run directory .*--run.root"):
        resolve(RunRequest(root=str(tmp_path), **{field: "elsewhere"}), {})
    run = _run(tmp_path, "x")  # resuming, the value of an older config.yaml that agrees is accepted
    same = run.path if field == "default_root_dir" else run.checkpoints
    resolve(RunRequest(root=str(tmp_path / "runs"), name="x", ckpt_path="last", **{field: str(same)}), {})


def test_a_user_logger_is_refused_with_the_option_that_chooses_logging(tmp_path):
    with pytest.raises(ConfigError, match="--trainer.logger=False: .*--run.wandb"):
        resolve(RunRequest(root=str(tmp_path), logger=False), {})
