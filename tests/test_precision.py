import pytest

from tests.conftest import TINY_FIT
from tests.test_cli import run_main
from tiedtransformer.training.precision import choose_precision


def test_bf16_only_where_the_hardware_runs_it_natively():
    assert choose_precision(False, False, {"avx", "avx2", "fma"})[0] == "32-true"
    assert choose_precision(False, False, {"avx2", "avx512f", "avx512bw"})[0] == "32-true"  # AVX512 without BF16
    assert choose_precision(False, False, {"avx2", "avx512_bf16"}) == (
        "bf16-mixed",
        "the CPU runs bf16 natively (avx512_bf16)",
    )
    assert choose_precision(False, False, {"amx_bf16", "amx_tile"})[0] == "bf16-mixed"
    assert choose_precision(True, True, set())[0] == "bf16-mixed"
    assert choose_precision(True, False, {"amx_bf16"})[0] == "32-true"  # the GPU decides


@pytest.mark.slow
def test_an_unset_precision_is_resolved_printed_and_saved(tmp_path, capsys, monkeypatch):
    import tiedtransformer.training.precision as precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    code, out, err = run_main(
        [
            "fit",
            *TINY_FIT,
            "--trainer.accelerator=cpu",
            "--trainer.limit_train_batches=1",
            "--run.root",
            str(tmp_path),
            "--run.name=p",
        ],
        capsys,
    )
    assert code == 0, err
    assert "precision: 32-true (the CPU has no native bf16" in out
    assert "precision: 32-true" in (tmp_path / "p" / "config.yaml").read_text()


@pytest.mark.slow
def test_bf16_on_a_cpu_without_it_is_kept_with_a_warning(tmp_path, capsys, monkeypatch):
    import tiedtransformer.training.precision as precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    code, out, err = run_main(
        [
            "fit",
            *TINY_FIT,
            "--trainer.accelerator=cpu",
            "--trainer.precision=bf16-mixed",
            "--trainer.limit_train_batches=1",
            "--run.root",
            str(tmp_path),
            "--run.name=b",
        ],
        capsys,
    )
    assert code == 0 and "without native bf16" in err
    assert "precision: bf16-mixed" in (tmp_path / "b" / "config.yaml").read_text()
