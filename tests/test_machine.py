"""tiedtransformer.run.machine: the machine and the code a run or a benchmark ran with."""

import subprocess

from tiedtransformer.run.machine import SOURCE, code_commit, machine


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_code_commit_names_the_checkout_and_marks_changed_tracked_files(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    git(repo, "add", "a.py")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    head = git(repo, "rev-parse", "HEAD")
    assert code_commit(repo) == head
    (repo / "untracked.txt").write_text("not code\n")
    assert code_commit(repo) == head  # untracked files are not the code that ran
    (repo / "a.py").write_text("x = 2\n")
    assert code_commit(repo) == head + "+"
    (repo / "site-packages").mkdir()  # an installed package inside some checkout is not that checkout's code
    assert code_commit(repo / "site-packages") is None
    assert code_commit(tmp_path) is None  # no checkout at all


def test_the_source_is_this_checkout_and_the_machine_is_described():
    assert (SOURCE / "tiedtransformer" / "run" / "machine.py").is_file()
    assert machine()["cores"] >= 1 and machine()["cpu"]
