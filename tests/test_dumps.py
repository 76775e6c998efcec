import pytest
import torch

from tests.conftest import tiny_model
from tiedtransformer.analysis import dumps
from tiedtransformer.analysis.dumps import EmbeddingDump, dump_from_model, read_any, read_dump, write_dump
from tiedtransformer.errors import ConfigError

TOKENS = [f"t{i}" for i in range(23)]


def three_way_dump():
    return dump_from_model(
        tiny_model(tying="three_way"),
        TOKENS,
        TOKENS,
        {"tying": "three_way", "step": 5},
        counts={"src": list(range(23)), "tgt": list(range(23))},
        spm_models={"src": b"m", "tgt": b"m"},
    )


def test_round_trip_keeps_values_names_vocab_and_ties(tmp_path):
    dump = three_way_dump()
    path = write_dump(tmp_path / "d", dump)
    assert {p.name for p in path.iterdir()} >= {"embeddings.safetensors", "vocab.txt", "meta.json"}
    assert (path / "vocab.txt").read_text().splitlines() == TOKENS
    back = read_dump(path)
    assert list(back.matrices) == ["enc_embed", "enc_lut", "dec_embed", "dec_lut"]
    for name, t in dump.matrices.items():
        torch.testing.assert_close(back.matrices[name], t)
    assert back.matrices["enc_embed"] is back.matrices["dec_lut"]  # stored once, aliased back
    assert back.tied_with["enc_lut"] == [] and set(back.tied_with["dec_embed"]) == {"enc_embed", "dec_lut"}
    assert back.meta["step"] == 5 and back.counts["src"][3] == 3 and back.spm_models["src"] == b"m"


def test_fp16_dumps(tmp_path):
    back = read_dump(write_dump(tmp_path / "d", three_way_dump(), dtype=torch.float16))
    assert back.matrices["dec_lut"].dtype == torch.float16


def test_separate_vocabularies_write_both_token_lists(tmp_path):
    src = [f"s{i}" for i in range(23)]
    dump = dump_from_model(tiny_model(), src, TOKENS, {})
    back = read_dump(write_dump(tmp_path / "d", dump))
    assert back.tokens("enc_lut") == src and back.tokens("dec_lut") == TOKENS


def test_a_failure_mid_write_leaves_the_previous_dump_intact(tmp_path, monkeypatch):
    first = three_way_dump()
    path = write_dump(tmp_path / "d", first)

    def crash(*args, **kwargs):
        (tmp_path / "partial-evidence").touch()
        raise OSError("disk full")

    monkeypatch.setattr(dumps, "save_file", crash)
    with pytest.raises(OSError):
        write_dump(path, EmbeddingDump({"dec_lut": torch.zeros(23, 16)}, TOKENS, TOKENS))
    back = read_dump(path)
    torch.testing.assert_close(back.matrices["dec_lut"], first.matrices["dec_lut"])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_not_a_dump_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not an embedding dump"):
        read_any(tmp_path)
    with pytest.raises(ConfigError, match="no such dump directory or checkpoint"):
        read_any(tmp_path / "missing")
    (tmp_path / "x.ckpt").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="x.ckpt: not a readable checkpoint"):
        read_any(tmp_path / "x.ckpt")
