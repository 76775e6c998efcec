import json
import os
import stat

import pytest

from tiedtransformer.errors import ConfigError
from tiedtransformer.training.runs import (
    atomic_write_json,
    atomic_write_text,
    check_free_space,
    checkpoint_bytes,
    decide_wandb_mode,
    make_run_dir,
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
    a = make_run_dir(str(tmp_path), "run")
    b = make_run_dir(str(tmp_path), "run")
    assert a != b and a.is_dir() and b.is_dir() and not list(a.iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_run_root_fails_early_with_the_option(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(stat.S_IRUSR | stat.S_IXUSR)
    with pytest.raises(ConfigError, match="--run.root"):
        make_run_dir(str(root), "run")


def test_unwritable_run_root_fails_early_with_the_option(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot write the run directory .*--run.root"):
        make_run_dir(str(blocker), "run")


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"a": 1})

    with pytest.raises(TypeError):
        atomic_write_text(path, object())  # fails inside the write, after the temporary exists
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary left behind
    assert stat.S_IMODE(path.stat().st_mode) & 0o044  # readable by others, like any file


def test_free_space_check_names_the_folder_and_the_need(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100 * 2**30, 99 * 2**30, 2**30))
    check_free_space(tmp_path, checkpoint_bytes(20_000_000))  # 3 x 0.22 GiB fit in 1 GiB
    with pytest.raises(ConfigError, match=rf"{tmp_path}.*1.00 GiB free.*1.68 GiB.*--run.root"):
        check_free_space(tmp_path, checkpoint_bytes(50_000_000))
