import json
import stat

import pytest

from tiedtransformer.atomic import atomic_dir, atomic_write_json, atomic_write_text, is_temporary


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"a": 1})

    with pytest.raises(TypeError):
        atomic_write_text(path, object())  # fails inside the write, after the temporary exists
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary left behind
    assert stat.S_IMODE(path.stat().st_mode) & 0o044  # readable by others, like any file


def test_atomic_dir_replaces_or_keeps_and_never_leaves_a_part(tmp_path):
    target = tmp_path / "d"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a").write_text("half")
        raise RuntimeError("disk full")
    assert (target / "a").read_text() == "1"  # the failed write left the old folder
    with atomic_dir(target, replace=False) as tmp:  # another process got there first: keep its work
        (tmp / "a").write_text("2")
    assert (target / "a").read_text() == "1"
    with atomic_dir(target) as tmp:
        (tmp / "b").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temporary or old folders left


def test_temporaries_are_told_from_the_files_they_stand_for(tmp_path):
    from tiedtransformer.atomic import atomic_path

    with atomic_path(tmp_path / "last.ckpt") as tmp:
        assert is_temporary(tmp.name)
    assert not is_temporary("last.ckpt") and not is_temporary(".hidden")
