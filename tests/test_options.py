import pytest

from tiedtransformer.errors import ConfigError
from tiedtransformer.training.options import DecodeConfig, accumulation_steps


def test_accumulation_follows_tokens_per_update():
    assert accumulation_steps(25000, 8192, 1) == 3  # 24,576 tokens
    assert accumulation_steps(25000, 3125, 8) == 1
    assert accumulation_steps(25000, 4096, 2) == 3
    with pytest.raises(ConfigError, match="lower data.max_tokens to 3125"):
        accumulation_steps(25000, 8192, 8)


def test_decode_config_describes_its_search():
    assert DecodeConfig().describe() == "beam 4, length penalty 0.6"
    assert DecodeConfig(beam_size=5).describe("greedy") == "greedy"
