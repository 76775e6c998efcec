import json

import pytest

from tests.data_helpers import demo_texts, write_hub_shards, write_parallel
from tiedtransformer.data.corpus import Corpus, local_files
from tiedtransformer.errors import ConfigError


def read(corpus, **kw):
    return [p for _, p in corpus.pairs(**kw)]


def test_parallel_text_files(tmp_path):
    pairs = demo_texts(30)
    prefix = write_parallel(tmp_path / "c" / "train", pairs)
    corpus = Corpus("files", "train", path=str(prefix))
    corpus.check()
    assert read(corpus) == pairs
    assert [i for i, _ in corpus.pairs()] == list(range(30))


def test_jsonl_in_both_shapes_and_tsv_with_or_without_header(tmp_path):
    pairs = demo_texts(6)
    flat = tmp_path / "a.jsonl"
    flat.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8")
    nested = tmp_path / "b.jsonl"
    nested.write_text("".join(json.dumps({"translation": p}) + "\n" for p in pairs), encoding="utf-8")
    tsv = tmp_path / "c.tsv"
    tsv.write_text("".join(f"{p['en']}\t{p['de']}\n" for p in pairs), encoding="utf-8")
    tsv_header = tmp_path / "d.tsv"
    tsv_header.write_text("de\ten\n" + "".join(f"{p['de']}\t{p['en']}\n" for p in pairs), encoding="utf-8")
    for f in (flat, nested, tsv, tsv_header):
        assert read(Corpus("files", "train", path=str(f))) == pairs, f


def test_bom_and_windows_line_endings(tmp_path):
    (tmp_path / "x.en").write_bytes("\ufeffHello.\r\nThe dog.\r\n".encode())
    (tmp_path / "x.de").write_bytes(b"Hallo.\r\nDer Hund.\r\n")
    assert read(Corpus("files", "train", path=str(tmp_path / "x"))) == [
        {"en": "Hello.", "de": "Hallo."},
        {"en": "The dog.", "de": "Der Hund."},
    ]


def test_missing_file_names_the_file_and_the_option(tmp_path):
    (tmp_path / "x.en").write_text("a\n")
    with pytest.raises(ConfigError, match=r"x\.de does not exist.*data.train_path"):
        Corpus("files", "train", path=str(tmp_path / "x")).check()


def test_parallel_files_of_different_lengths_name_both_counts(tmp_path):
    (tmp_path / "x.en").write_text("a\nb\nc\n")
    (tmp_path / "x.de").write_text("a\nb\n")
    with pytest.raises(ConfigError, match=r"x\.en has 3 lines, .*x\.de has 2"):
        Corpus("files", "train", path=str(tmp_path / "x")).check()


def test_invalid_utf8_names_file_and_line_or_is_skipped(tmp_path):
    (tmp_path / "x.en").write_bytes(b"good\nbad \xff\xfe here\nfine\n")
    (tmp_path / "x.de").write_bytes(b"gut\nschlecht\nok\n")
    with pytest.raises(ConfigError, match=r"x\.en:2: not valid UTF-8.*skip_invalid_utf8"):
        read(Corpus("files", "train", path=str(tmp_path / "x")))
    kept = read(Corpus("files", "train", path=str(tmp_path / "x"), skip_invalid_utf8=True))
    assert kept == [{"en": "good", "de": "gut"}, None, {"en": "fine", "de": "ok"}]


def test_bad_jsonl_line_is_reported(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"en": "a", "de": "b"}\n{"english": "a"}\n')
    with pytest.raises(ConfigError, match=r"x\.jsonl:2: expected a JSON object"):
        read(Corpus("files", "train", path=str(f)))


@pytest.mark.parametrize("fmt", ["parquet", "json"])
def test_hub_code_path_on_a_local_dataset_in_the_hub_schema(tmp_path, fmt):
    train, valid = demo_texts(40), demo_texts(5, "validation")
    folder = write_hub_shards(tmp_path / "wmt_like", {"train": train, "validation": valid}, fmt=fmt)
    got = read(Corpus("hub", "train", hub_dataset=str(folder), hub_config=None))
    assert sorted(got, key=str) == sorted(train, key=str)
    assert read(Corpus("hub", "validation", hub_dataset=str(folder), hub_config=None)) == valid
    # rank split: disjoint and complete
    halves = [
        read(Corpus("hub", "train", hub_dataset=str(folder), hub_config=None), rank=r, world_size=2) for r in (0, 1)
    ]
    assert sorted(halves[0] + halves[1], key=str) == sorted(train, key=str)
    assert not {str(p) for p in halves[0]} & {str(p) for p in halves[1]}


def test_hub_train_stream_reads_one_shard_at_a_time_in_an_order_that_changes_by_epoch(tmp_path):
    k = 4
    pairs = [{"en": str(i), "de": str(i)} for i in range(k * 2500)]  # pair i lies in shard i % k
    folder = write_hub_shards(tmp_path / "h", {"train": pairs}, n_shards=k)
    corpus = Corpus("hub", "train", hub_dataset=str(folder), hub_config=None)
    orders = set()
    for epoch in range(3):
        shards = [int(p["en"]) % k for p in read(corpus, epoch=epoch)]
        assert sorted(shards) == sorted(i % k for i in range(len(pairs)))
        # one shard feeds the buffer at a time (not interleaved with others: see Corpus._hub_pairs)
        assert len(set(shards[:1000])) == 1
        orders.add(tuple(dict.fromkeys(shards)))
    assert len(orders) > 1  # the shard order is reshuffled each epoch


def test_unreachable_hub_dataset_is_a_clear_error():
    with pytest.raises(ConfigError, match="could not open 'wmt/wmt14'.*data.source=files"):
        read(Corpus("hub", "train"))


def test_local_files_resolution(tmp_path):
    assert set(local_files(str(tmp_path / "train"))) == {"en", "de"}
    assert set(local_files(str(tmp_path / "train.tsv"))) == {"table"}
