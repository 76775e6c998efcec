import os
import stat
from pathlib import Path

import pytest

from tiedtransformer.errors import ConfigError
from tiedtransformer.run.files import CrossDir, DumpDir, RunDir
from tiedtransformer.run.plan import checkpoint_bytes
from tiedtransformer.run.summary import FitSummary


def test_run_dirs_are_unique_and_writable(tmp_path):
    a = RunDir(tmp_path / "run").create()
    b = RunDir(tmp_path / "run").create()
    assert a.path != b.path and a.path.is_dir() and b.path.is_dir() and not list(a.path.iterdir())
    assert b.name == "run-2"


def test_read_only_run_root_fails_early_with_the_option(tmp_path, monkeypatch):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.geteuid() == 0:  # root writes into read-only folders: the kernel's answer to anyone else, faked
        monkeypatch.setattr(
            Path, "mkdir", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "Permission denied"))
        )
    with pytest.raises(ConfigError, match="Permission denied.*--run.root"):
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


def test_run_dir_knows_its_files(tmp_path):
    run = RunDir(tmp_path / "r")
    assert run.snapshot(12) == tmp_path / "r" / "embeddings" / "step-00000012"
    assert run.kept == tmp_path / "r" / "checkpoints" / "kept" and run.averaged.name == "averaged.ckpt"
    assert run.metrics_version(resuming=False) == "" and run.read_summary() is None and not run.finished()
    run.path.mkdir()
    (run.path / "resume-1").mkdir()
    assert run.metrics_version(resuming=True) == "resume-2"
    run.write_summary(FitSummary(status="finished"))
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


def test_a_dump_and_a_comparison_know_their_files(tmp_path):
    d = DumpDir(tmp_path / "step-00000012")
    assert d.embeddings.name == "embeddings.safetensors" and not d.is_dump()
    assert (d.vocab("tgt").name, d.vocab("src").name) == ("vocab.txt", "vocab.src.txt")
    assert (d.spm("tgt").name, d.spm("src").name) == ("spm.model", "spm.src.model")
    assert d.knn("dec_lut") == d.path / "knn" / "dec_lut.tsv" and d.figure("histogram").name == "histogram.png"
    d.path.mkdir()
    d.embeddings.write_bytes(b"")
    assert d.is_dump()
    c = CrossDir(tmp_path / "vs")
    assert (c.json.name, c.report.name, c.figure("spearman").name) == ("cross.json", "cross.md", "cross_spearman.png")


def test_a_run_finds_its_dumps_and_the_run_a_dump_or_checkpoint_lies_in(tmp_path):
    run = RunDir(tmp_path / "r")
    for step in (0, 30):
        run.snapshot(step).mkdir(parents=True)
        DumpDir(run.snapshot(step)).embeddings.write_bytes(b"")
    DumpDir(run.snapshot(30)).similarity.write_text("{}")
    assert run.dumps() == [run.snapshot(0), run.snapshot(30)] and run.snapshots() == [run.snapshot(30)]
    assert RunDir.containing(run.snapshot(30)) is None  # no config.yaml or summary.json: not a run
    run.config.write_text("")
    run.checkpoints.mkdir()
    assert RunDir.containing(run.snapshot(30)).path == run.path
    assert RunDir.containing(run.checkpoints / "x.ckpt").path == run.path
    assert RunDir.containing(tmp_path / "elsewhere" / "x.ckpt") is None
    assert run.averaged_last(5).name == "averaged-last5.ckpt" and run.kept_name(3, 1234) == "epoch03-step00001234.ckpt"
    assert run.last.name == "last.ckpt" and run.interrupted.name == "last-interrupted.ckpt"
