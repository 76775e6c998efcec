"""tiedtransformer.training.config_checks: refusals named by option, with what to do instead (the CLI's tests
run them end to end)."""

import pytest
from jsonargparse import Namespace

from tiedtransformer.errors import ConfigError
from tiedtransformer.training.config_checks import check_strategy, check_stream_options, is_fraction


def test_a_fraction_is_a_float_below_one():
    assert is_fraction(0.5) and not is_fraction(2.0) and not is_fraction(3) and not is_fraction(1.0)
    assert is_fraction(0.0, zero_allowed=False) and not is_fraction(0.0)


def cfg(**trainer):
    return Namespace(trainer=Namespace(**trainer), model=Namespace(val_every_n_steps=None))


def test_a_fraction_of_a_stream_is_refused_and_counts_pass():
    with pytest.raises(ConfigError, match=r"trainer.limit_val_batches=0.5: the data is a stream"):
        check_stream_options(cfg(limit_val_batches=0.5), "fit")
    check_stream_options(cfg(limit_val_batches=10, limit_train_batches=1.0), "fit")
    check_stream_options(cfg(limit_train_batches=0.5), "test")  # test reads no training stream


def test_fsdp1_is_refused_with_the_fsdp2_config_named():
    with pytest.raises(ConfigError, match="configs/fsdp.yaml"):
        check_strategy("fsdp")
    check_strategy("ddp")
