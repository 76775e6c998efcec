import dataclasses

import pytest
import torch

from tests.conftest import tiny_model
from tiedtransformer.errors import ConfigError
from tiedtransformer.run.checkpoint import load_checkpoint
from tiedtransformer.training.averaging import (
    average_checkpoints,
    average_state_dicts,
    checkpoint_step,
    last_checkpoints,
    shared_groups,
)


def fake_checkpoint(net, step: int, **hp) -> dict:
    return {
        "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
        "global_step": step,
        "hyper_parameters": {"net": {**dataclasses.asdict(net.cfg), **hp}},
        "TranslationData": {"vocab_tokens": {"src": ["a"], "tgt": ["a"]}},
        "optimizer_states": [{"step": step}],
    }


def test_average_of_identical_states_is_the_state_and_of_two_is_their_mean():
    a = tiny_model(tying="three_way").state_dict()
    same = average_state_dicts([a, a, a])
    for k in a:
        assert torch.equal(same[k], a[k])
    b = tiny_model(tying="three_way").state_dict()  # other random weights (the fixture seeds once)
    mean = average_state_dicts([a, b])
    for k in a:
        torch.testing.assert_close(mean[k], (a[k] + b[k]) / 2)


def test_a_tied_matrix_is_averaged_once_and_stays_one_tensor():
    states = [tiny_model(tying="three_way").state_dict() for _ in range(2)]
    assert ["enc_embed.weight", "dec_embed.weight", "dec_lut.weight"] in shared_groups(states[0])
    out = average_state_dicts(states)
    assert out["enc_embed.weight"] is out["dec_embed.weight"] is out["dec_lut.weight"]
    untied = average_state_dicts([tiny_model(tying="none").state_dict() for _ in range(2)])
    assert untied["enc_embed.weight"] is not untied["dec_lut.weight"]
    with pytest.raises(ValueError, match="ties other tensors"):
        average_state_dicts([states[0], tiny_model(tying="none").state_dict()])


def test_averaged_checkpoint_file_loads_into_a_tied_model_and_keeps_the_last_ones_other_state(tmp_path):
    nets = [tiny_model(tying="decoder") for _ in range(3)]
    paths = []
    for i, net in enumerate(nets):
        paths.append(tmp_path / f"epoch{i:02d}-step{10 * (i + 1)}.ckpt")
        torch.save(fake_checkpoint(net, 10 * (i + 1)), paths[-1])
    out = average_checkpoints(paths, tmp_path / "avg.ckpt")
    ckpt = load_checkpoint(out)
    sd = ckpt["state_dict"]
    assert sd["net.dec_embed.weight"].data_ptr() == sd["net.dec_lut.weight"].data_ptr()  # stored once
    expected = sum(n.dec_lut.weight for n in nets) / 3
    torch.testing.assert_close(sd["net.dec_lut.weight"], expected.detach())
    assert ckpt["global_step"] == 30 and ckpt["optimizer_states"] == [{"step": 30}]
    assert ckpt["averaged_from"] == [str(p) for p in paths]
    fresh = tiny_model(tying="decoder")
    fresh.load_state_dict({k[4:]: v for k, v in sd.items()})
    assert fresh.dec_embed.weight is fresh.dec_lut.weight
    torch.testing.assert_close(fresh.dec_embed.weight, expected.detach())


def test_checkpoints_of_another_shape_or_vocabulary_are_refused(tmp_path):
    a, b = tmp_path / "a-step1.ckpt", tmp_path / "b-step2.ckpt"
    torch.save(fake_checkpoint(tiny_model(), 1), a)
    torch.save(fake_checkpoint(tiny_model(tying="decoder"), 2), b)
    with pytest.raises(ConfigError, match="model.net.tying is 'none' in one, 'decoder' in the other"):
        average_checkpoints([a, b], tmp_path / "x.ckpt")
    other_vocab = fake_checkpoint(tiny_model(), 2)
    other_vocab["TranslationData"]["vocab_tokens"] = {"src": ["b"], "tgt": ["b"]}
    torch.save(other_vocab, b)
    with pytest.raises(ConfigError, match="vocabularies differ"):
        average_checkpoints([a, b], tmp_path / "x.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="junk.ckpt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.ckpt")
    assert not (tmp_path / "x.ckpt").exists()


def test_the_last_checkpoints_of_a_run_are_found_by_step_once_each(tmp_path):
    ck = tmp_path / "checkpoints"
    (ck / "kept").mkdir(parents=True)
    for name in [
        "epoch00-step5.ckpt",
        "epoch01-step10.ckpt",
        "last.ckpt",
        "averaged.ckpt",
        "kept/epoch01-step00000010.ckpt",
        "kept/epoch02-step00000015.ckpt",
    ]:
        (ck / name).write_bytes(b"")
    assert [checkpoint_step(p) for p in last_checkpoints(tmp_path, 3)] == [5, 10, 15]
    assert [checkpoint_step(p) for p in last_checkpoints(tmp_path, 2)] == [10, 15]
    with pytest.raises(ConfigError, match="fewer than --last 4"):
        last_checkpoints(tmp_path, 4)
