import pytest

from tiedtransformer.errors import ConfigError
from tiedtransformer.training.options import (
    DecodeConfig,
    OptimConfig,
    accumulation_steps,
    use_fused_adam,
    use_fused_loss,
)


def test_accumulation_follows_tokens_per_update():
    assert accumulation_steps(25000, 8192, 1) == 3  # 24,576 tokens
    assert accumulation_steps(25000, 3125, 8) == 1
    assert accumulation_steps(25000, 4096, 2) == 3
    with pytest.raises(ConfigError, match="lower data.max_tokens to 3125"):
        accumulation_steps(25000, 8192, 8)


def test_decode_config_describes_its_search():
    assert DecodeConfig().describe() == "beam 4, length penalty 0.6"
    assert DecodeConfig(beam_size=5).describe("greedy") == "greedy"


def test_the_fused_loss_is_the_default_except_on_a_gpu_and_an_explicit_choice_wins():
    assert use_fused_loss(None, "cpu") and not use_fused_loss(None, "cuda")
    for device in ("cpu", "cuda", "mps"):
        assert use_fused_loss(True, device) and not use_fused_loss(False, device)
    assert OptimConfig().fused_loss is None


def test_adam_is_fused_unless_gradients_are_scaled_or_sharded():
    assert use_fused_adam(grad_scaler=False, sharded=False)
    assert not use_fused_adam(grad_scaler=True, sharded=False)
    assert not use_fused_adam(grad_scaler=False, sharded=True)
