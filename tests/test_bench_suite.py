"""benchmarks/suite.py: pytest's own summary read into numbers."""

from benchmarks.suite import counts


def test_the_summary_line_the_workers_and_the_slowest_tests_are_read():
    out = (
        "created: 2/2 workers\n2 workers [701 items]\n....\n"
        "==== slowest 20 durations ====\n"
        "104.76s call     tests/test_module.py::test_the_full_demo\n"
        "17.28s setup    tests/test_sweep.py::test_local_sweep[x-1]\n"
        "==== 701 passed, 3 skipped, 128 warnings in 541.32s (0:09:01) ====\n"
    )
    assert counts(out) == {
        "passed": 701,
        "failed": 0,
        "skipped": 3,
        "errors": 0,
        "workers": 2,
        "slowest": [
            {"s": 104.76, "phase": "call", "test": "tests/test_module.py::test_the_full_demo"},
            {"s": 17.28, "phase": "setup", "test": "tests/test_sweep.py::test_local_sweep[x-1]"},
        ],
    }


def test_failures_errors_and_deselected_tests_are_counted_and_words_elsewhere_are_not():
    out = (
        "tests/test_x.py::test_y FAILED: the run failed, 3 passed before\n"
        "= 1 failed, 699 passed, 75 deselected, 2 errors in 12.00s =\n"
        "a line after it that says the word passed\n"
    )
    found = counts(out)
    assert {k: found[k] for k in ("passed", "failed", "skipped", "errors")} == {
        "passed": 699,
        "failed": 1,
        "skipped": 0,
        "errors": 2,
    }
    assert found["workers"] == 1 and found["slowest"] == []
    assert counts("= 1 error in 1.00s =\n")["errors"] == 1
    assert counts("no tests ran in 0.01s\n") == {
        "passed": 0,
        "failed": 0,
        "skipped": 0,
        "errors": 0,
        "workers": 1,
        "slowest": [],
    }
