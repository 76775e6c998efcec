import dataclasses

import pytest
import torch

from tests.conftest import tiny_model
from tiedtransformer.errors import ConfigError
from tiedtransformer.training.checkpoint import load_checkpoint, network_from_checkpoint, network_options


def _checkpoint(net, flat: bool = False) -> dict:
    options = dataclasses.asdict(net.cfg)
    return {
        "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
        "hyper_parameters": options if flat else {"net": options, "optim": {"lr": 1e-3}},
    }


@pytest.mark.parametrize("flat", [False, True])  # flat: the hyper-parameters of checkpoints before model.net
def test_the_network_of_a_checkpoint_is_the_trained_one_tied_as_trained(tmp_path, flat):
    net = tiny_model(tying="three_way")
    torch.save(_checkpoint(net, flat), tmp_path / "a.ckpt")
    ckpt = load_checkpoint(tmp_path / "a.ckpt")
    assert network_options(ckpt["hyper_parameters"])["tying"] == "three_way"
    back = network_from_checkpoint(ckpt)
    assert back.enc_embed.weight is back.dec_lut.weight and not back.training
    for k, v in net.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)


def test_weights_that_do_not_fit_their_options_are_refused(tmp_path):
    ckpt = _checkpoint(tiny_model())
    ckpt["hyper_parameters"]["net"]["d_model"] = 32
    with pytest.raises(ConfigError, match="do not fit the network its options describe"):
        network_from_checkpoint(ckpt)


def test_what_is_not_a_checkpoint_of_ours_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match="nowhere.ckpt: no such checkpoint file"):
        load_checkpoint(tmp_path / "nowhere.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="junk.ckpt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.ckpt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.ckpt")
    with pytest.raises(ConfigError, match="other.ckpt: not a tiedtransformer checkpoint"):
        load_checkpoint(tmp_path / "other.ckpt")
