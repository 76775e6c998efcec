"""tiedtransformer.run.checkpoint_io: Lightning's checkpoint writes, atomic."""

import errno

import pytest
import torch

from tests.conftest import tiny_model
from tests.test_checkpoint import _checkpoint
from tiedtransformer.errors import WriteError
from tiedtransformer.run import checkpoint_io
from tiedtransformer.run.checkpoint_io import CheckpointFiles


def test_a_checkpoint_write_that_fails_part_way_leaves_the_previous_one(tmp_path, monkeypatch):
    files = CheckpointFiles()
    first = _checkpoint(tiny_model())
    files.save_checkpoint(first, tmp_path / "last.ckpt")

    def disk_full(obj, path):  # writes part of the file, then the disk is full
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04" + b"\0" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_io, "save", disk_full)
    with pytest.raises(WriteError, match=r"could not write .*last.ckpt: No space left on device. What was there"):
        files.save_checkpoint(_checkpoint(tiny_model(tying="three_way")), tmp_path / "last.ckpt")
    back = files.load_checkpoint(tmp_path / "last.ckpt")  # the first, whole
    assert back["hyper_parameters"]["net"]["tying"] == "none"
    for k, v in first["state_dict"].items():
        assert torch.equal(back["state_dict"][k], v)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no partial file left beside it
