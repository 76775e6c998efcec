"""benchmarks/suite.py: pytest's own summary read into numbers."""

from benchmarks.suite import counts


def test_the_summary_line_the_workers_and_the_slowest_tests_are_read():
    out = (
        "created: 2/2 workers\n2 workers [701 items]\n....\n"
        "==== slowest 20 durations ====\n"
        "104.76s call     tests/test_module.py::test_the_full_demo\n"
        "17.28s setup    tests/test_sweep.py::test_local_sweep[x-1]\n"
        "701 passed, 3 skipped, 128 warnings in 541.32s (0:09:01)\n"
    )
    assert counts(out) == {
        "passed": 701,
        "failed": 0,
        "skipped": 3,
        "workers": 2,
        "slowest": [
            {"s": 104.76, "phase": "call", "test": "tests/test_module.py::test_the_full_demo"},
            {"s": 17.28, "phase": "setup", "test": "tests/test_sweep.py::test_local_sweep[x-1]"},
        ],
    }
    failed = "....F\n= 1 failed, 699 passed, 1 error in 12.00s =\n"
    assert counts(failed) == {"passed": 699, "failed": 1, "skipped": 0, "workers": 1, "slowest": []}
    assert counts("no tests ran in 0.01s\n")["passed"] == 0
