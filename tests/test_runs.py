import os
import stat

import pytest

from tiedtransformer.errors import ConfigError
from tiedtransformer.training.runs import (
    RESUMING_ENV,
    RUN_DIR_ENV,
    RUN_NAME_ENV,
    RunDir,
    RunRequest,
    checkpoint_bytes,
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


def test_run_dirs_are_unique_and_writable(tmp_path):
    a = RunDir(tmp_path / "run").create()
    b = RunDir(tmp_path / "run").create()
    assert a.path != b.path and a.path.is_dir() and b.path.is_dir() and not list(a.path.iterdir())
    assert b.name == "run-2"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_run_root_fails_early_with_the_option(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(stat.S_IRUSR | stat.S_IXUSR)
    with pytest.raises(ConfigError, match="--run.root"):
        RunDir(root / "run").create()


def test_unwritable_run_root_fails_early_with_the_option(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot write the run directory .*--run.root"):
        RunDir(blocker / "run").create()


def test_free_space_check_names_the_folder_and_the_need(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100 * 2**30, 99 * 2**30, 2**30))
    RunDir(tmp_path).check_free_space(checkpoint_bytes(20_000_000))  # 3 x 0.22 GiB fit in 1 GiB
    with pytest.raises(ConfigError, match=rf"{tmp_path}.*1.00 GiB free.*1.68 GiB.*--run.root"):
        RunDir(tmp_path).check_free_space(checkpoint_bytes(50_000_000))


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


def test_run_dir_knows_its_files(tmp_path):
    run = RunDir(tmp_path / "r")
    assert run.snapshot(12) == tmp_path / "r" / "embeddings" / "step-00000012"
    assert run.kept == tmp_path / "r" / "checkpoints" / "kept" and run.averaged.name == "averaged.ckpt"
    assert run.metrics_version(resuming=False) == "" and run.read_summary() is None and not run.finished()
    run.path.mkdir()
    (run.path / "resume-1").mkdir()
    assert run.metrics_version(resuming=True) == "resume-2"
    run.write_summary({"status": "finished"})
    assert run.finished()


def test_a_resume_clears_what_a_killed_writer_left(tmp_path):
    run = RunDir(tmp_path / "r")
    run.checkpoints.mkdir(parents=True)
    (run.checkpoints / "last.ckpt").write_bytes(b"whole")
    (run.checkpoints / ".last.ckpt.ab12_x9z").write_bytes(b"half")  # killed mid-write
    (run.path / ".summary.json.qwertyui").write_text("{")
    dumps = run.embeddings
    (dumps / ".step-00000010.k2k2k2k2").mkdir(parents=True)  # a dump being built
    (dumps / ".step-00000005.old").mkdir()  # killed between the two renames of a replacement
    (dumps / ".step-00000005.old" / "x").write_text("old dump")
    (run.path / ".hidden-by-the-user").write_text("keep")
    removed = run.remove_partial_writes()
    assert len(removed) == 4
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["last.ckpt"]
    assert sorted(p.name for p in dumps.iterdir()) == ["step-00000005"]
    assert (dumps / "step-00000005" / "x").read_text() == "old dump"  # the previous folder is back
    assert (run.path / ".hidden-by-the-user").exists() and not (run.path / ".summary.json.qwertyui").exists()
