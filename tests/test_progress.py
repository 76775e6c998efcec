import re
from types import SimpleNamespace

import pytest
from tiedtransformer.callbacks import StreamProgressBar

from tests.conftest import TINY_FIT
from tests.test_cli import run_main


def test_a_stream_gets_the_previous_epochs_count_as_its_total_and_a_sized_loader_keeps_its_own():
    bar = StreamProgressBar()
    bar._trainer = SimpleNamespace(num_training_batches=float("inf"), max_epochs=3, max_steps=-1)
    assert bar.total_train_batches == float("inf")  # the first epoch of a stream: unknown
    bar.last_epoch_batches = 37
    assert bar.total_train_batches == 37
    bar._trainer = SimpleNamespace(num_training_batches=12, max_epochs=3, max_steps=-1)
    assert bar.total_train_batches == 12


@pytest.mark.slow
def test_the_second_epoch_of_a_streamed_fit_shows_a_total(tmp_path, capsys):
    args = [a for a in TINY_FIT if not a.startswith(("--trainer.enable_progress_bar", "--trainer.max_epochs"))]
    code, out, err = run_main(
        ["fit", *args, "--trainer.max_epochs=2", "--run.root", str(tmp_path), "--run.name=p"], capsys
    )
    assert code == 0, err
    text = (out + err).replace("\r", "\n")
    first = re.findall(r"Epoch 0: .*?\| (\d+)/\?", text)
    second = re.findall(r"Epoch 1: .*?\| (\d+)/(\d+) ", text)
    assert first and second, text[-2000:]
    assert int(second[0][1]) == max(int(n) for n in first)  # the total is epoch 0's count
