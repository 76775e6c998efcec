import dataclasses

import pytest
import torch

from tests.conftest import tiny_model
from tests.probes import RunsCode
from tiedtransformer.errors import ConfigError
from tiedtransformer.run.checkpoint import (
    check_checkpoint,
    load_checkpoint,
    network_from_checkpoint,
    network_options,
)


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


def test_a_crafted_pickle_is_refused_and_nothing_in_it_runs(tmp_path):
    marker = tmp_path / "PWNED"
    ckpt = _checkpoint(tiny_model())
    ckpt["hyper_parameters"]["payload"] = RunsCode(marker)
    torch.save(ckpt, tmp_path / "evil.ckpt")
    with pytest.raises(ConfigError, match=r"evil.ckpt: refused: it holds a reference to posix.system") as e:
        load_checkpoint(tmp_path / "evil.ckpt")
    assert "nothing in it was executed" in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()


def test_truncated_empty_and_directory_checkpoints_are_named_with_what_is_wrong(tmp_path):
    torch.save(_checkpoint(tiny_model()), tmp_path / "good.ckpt")
    blob = (tmp_path / "good.ckpt").read_bytes()
    for cut in (len(blob) // 2, len(blob) - 10, 100):
        (tmp_path / "cut.ckpt").write_bytes(blob[:cut])
        with pytest.raises(ConfigError, match=rf"cut.ckpt: not a complete checkpoint \({cut:,} bytes") as e:
            load_checkpoint(tmp_path / "cut.ckpt")
        assert "\n" not in str(e.value)
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"empty.ckpt: the file is empty \(0 bytes\)"):
        load_checkpoint(tmp_path / "empty.ckpt")
    (tmp_path / "adir.ckpt").mkdir()
    with pytest.raises(ConfigError, match="adir.ckpt: a directory, not a checkpoint file"):
        load_checkpoint(tmp_path / "adir.ckpt")


def test_a_state_dict_of_more_than_tensors_is_not_ours(tmp_path):
    ckpt = _checkpoint(tiny_model())
    ckpt["state_dict"]["net.extra"] = [1, 2]
    torch.save(ckpt, tmp_path / "odd.ckpt")
    with pytest.raises(ConfigError, match="odd.ckpt: not a tiedtransformer checkpoint"):
        load_checkpoint(tmp_path / "odd.ckpt")


def test_check_checkpoint_names_the_file_and_the_option_that_differs(tmp_path):
    net = tiny_model(tying="decoder")
    ckpt = _checkpoint(net)
    ckpt["TranslationData"] = {"direction": "de-en"}
    torch.save(ckpt, tmp_path / "a.ckpt")
    check_checkpoint(tmp_path / "a.ckpt", net.cfg, "de-en")  # the same: fine
    with pytest.raises(ConfigError, match=r"a.ckpt: the checkpoint was trained with model.net.tying='decoder'"):
        check_checkpoint(tmp_path / "a.ckpt", dataclasses.replace(net.cfg, tying="none"), "de-en")
    with pytest.raises(ConfigError, match=r"a.ckpt: .*model.net.d_model=16, but this config has model.net.d_model=32"):
        check_checkpoint(tmp_path / "a.ckpt", dataclasses.replace(net.cfg, d_model=32), "de-en")
    with pytest.raises(
        ConfigError, match="a.ckpt: the checkpoint translates de-en, but this config has data.direction"
    ):
        check_checkpoint(tmp_path / "a.ckpt", net.cfg, "en-de")
