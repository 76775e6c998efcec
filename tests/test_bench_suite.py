"""benchmarks/suite.py: pytest's own summary read into numbers."""

from benchmarks.suite import counts


def test_the_summary_line_and_the_workers_are_read():
    out = (
        "created: 2/2 workers\n2 workers [701 items]\n....\n701 passed, 3 skipped, 128 warnings in 541.32s (0:09:01)\n"
    )
    assert counts(out) == {"passed": 701, "failed": 0, "skipped": 3, "workers": 2}
    failed = "....F\n= 1 failed, 699 passed, 1 error in 12.00s =\n"
    assert counts(failed) == {"passed": 699, "failed": 1, "skipped": 0, "workers": 1}
    assert counts("no tests ran in 0.01s\n") == {"passed": 0, "failed": 0, "skipped": 0, "workers": 1}
