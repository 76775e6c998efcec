import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.conftest import tiny_model, vocabulary_of
from tiedtransformer.analysis import dumps
from tiedtransformer.analysis.dumps import EmbeddingDump, dump_from_model, read_any, read_dump, write_dump
from tiedtransformer.errors import ConfigError, WriteError

TOKENS = [f"t{i}" for i in range(23)]


def three_way_dump():
    return dump_from_model(
        tiny_model(tying="three_way"),
        vocabulary_of(TOKENS, TOKENS, {"src": list(range(23)), "tgt": list(range(23))}, {"src": b"m", "tgt": b"m"}),
        {"tying": "three_way", "step": 5},
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
    dump = dump_from_model(tiny_model(), vocabulary_of(src, TOKENS), {})
    back = read_dump(write_dump(tmp_path / "d", dump))
    assert back.tokens("enc_lut") == src and back.tokens("dec_lut") == TOKENS


def test_a_failure_mid_write_leaves_the_previous_dump_intact(tmp_path, monkeypatch):
    first = three_way_dump()
    path = write_dump(tmp_path / "d", first)

    def crash(*args, **kwargs):
        (tmp_path / "partial-evidence").touch()
        raise OSError("disk full")

    monkeypatch.setattr(dumps, "save_file", crash)
    with pytest.raises(WriteError, match=r"could not write .*/d: disk full. What was there before is intact"):
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


def test_a_damaged_dump_is_named_with_what_is_wrong(tmp_path):
    path = write_dump(tmp_path / "d", three_way_dump())
    (path / "meta.json").write_text('{"tied_with": {"enc_embed": [], "enc_lut": [], "dec_embed": [], "dec_lut": []}}')
    stored = load_file(str(path / "embeddings.safetensors"))
    save_file({"enc_embed": stored["enc_embed"]}, str(path / "embeddings.safetensors"))  # enc_lut lost
    with pytest.raises(ConfigError, match=r"embeddings.safetensors: the enc_lut matrix is missing"):
        read_dump(path)
    save_file(
        {"enc_embed": stored["enc_embed"], "enc_lut": stored["enc_lut"][:-1]}, str(path / "embeddings.safetensors")
    )
    (path / "meta.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"the enc_lut matrix has shape \(22, 16\).*vocab.txt has 23 tokens"):
        read_dump(path)
    blob = (path / "embeddings.safetensors").read_bytes()
    (path / "embeddings.safetensors").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ConfigError, match=r"embeddings.safetensors: not a readable safetensors file .*truncated"):
        read_dump(path)
    (path / "embeddings.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"embeddings.safetensors: not a readable safetensors file"):
        read_dump(path)
    write_dump(path, three_way_dump())
    (path / "vocab.txt").unlink()
    with pytest.raises(ConfigError, match=r"vocab.txt: missing"):
        read_dump(path)
    write_dump(path, three_way_dump())
    (path / "counts.json").write_text('{"src": [1, 2]}')
    with pytest.raises(ConfigError, match=r"counts.json: needs one training count per src token \(23\)"):
        read_dump(path)
    (path / "counts.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"counts.json: not valid JSON"):
        read_dump(path)
