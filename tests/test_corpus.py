import json
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.data_helpers import demo_texts, write_hub_shards, write_parallel
from tiedtransformer.data.corpus import Corpus, local_files
from tiedtransformer.data.stream import tokenized
from tiedtransformer.data.vocab import build_vocabulary
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
        # one shard feeds the buffer at a time (not interleaved with others: see HubReader.rank_pairs)
        assert len(set(shards[:1000])) == 1
        orders.add(tuple(dict.fromkeys(shards)))
    assert len(orders) > 1  # the shard order is reshuffled each epoch


def test_unreachable_hub_dataset_is_a_clear_error():
    with pytest.raises(ConfigError, match="could not open 'wmt/wmt14'.*data.source=files"):
        read(Corpus("hub", "train"))


def test_local_files_resolution(tmp_path):
    assert set(local_files(str(tmp_path / "train"))) == {"en", "de"}
    assert set(local_files(str(tmp_path / "train.tsv"))) == {"table"}


# --- the reader under a fuzzer -------------------------------------------------------------------
# Random parallel corpora in every format, with the text people's files really hold (combining marks,
# right-to-left text, zero-width and control characters, NUL, lone surrogates as invalid UTF-8 bytes,
# very long lines, empty files, BOM and CRLF mixes, broken JSONL and TSV rows). The reader and the
# tokenizer behind it either account for every line (pairs yielded + pairs skipped and counted ==
# lines) or stop with a ConfigError naming the file and the first bad line; nothing else.

SPECIAL = [
    "e\u0301",  # combining acute
    "\u05e9\u05dc\u05d5\u05dd",  # Hebrew (RTL)
    "\u0645\u0631\u062d\u0628\u0627",  # Arabic (RTL)
    "\u202e",  # right-to-left override
    "\u200b",  # zero-width space
    "\u200d",  # zero-width joiner
    "\ufeff",  # BOM inside a line
    "\x00",
    "\x07",
    "\x1b[31m",
    "\r",
    "\x0b",
    "\x0c",
    "\x85",
    "\u2028",
    "\U0001f600",
    "  ",
    "the dog runs",
    "der Hund läuft",
]
INVALID = [b"\xed\xa0\x80", b"\xff", b"\xc3", b"\x80abc"]  # a lone surrogate encoded, and broken sequences
_text = st.lists(
    st.one_of(
        st.sampled_from(SPECIAL),
        st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\n\t"), max_size=12),
    ),
    max_size=5,
).map("".join)
text = st.one_of(_text, _text, _text, st.just("word " * 3000))  # now and then a line far past max_len


@st.composite
def encoded_line(draw, line: str) -> tuple[bytes, bool]:
    """A line as bytes with its ending, and whether it was made invalid UTF-8."""
    raw = line.encode("utf-8")
    bad = draw(st.integers(0, 9)) == 0
    if bad:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from(INVALID)) + raw[at:]
    return raw, bad


@st.composite
def text_file(draw, lines: list[str]) -> tuple[bytes, list[bool]]:
    """``lines`` as the bytes of a file (LF/CRLF mixed, maybe a BOM, maybe no final newline) and which
    lines are invalid UTF-8."""
    parts, bad = [], []
    for line in lines:
        raw, b = draw(encoded_line(line))
        parts += [raw, draw(st.sampled_from([b"\n", b"\r\n"]))]
        bad.append(b)
    if parts and parts[-2] and draw(st.booleans()):
        parts.pop()  # no line ending after the last line (a last line of no bytes would vanish)
    data = b"".join(parts)
    if data and draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data, bad


def _json_row(draw) -> tuple[str, str | None]:
    """A JSONL line and what is wrong with it (None: fine)."""
    en, de = draw(text), draw(text)
    kind = draw(
        st.sampled_from(["flat", "nested", "flat", "blank", "missing", "type", "not_object", "broken", "surrogate"])
    )
    ascii_ = draw(st.booleans())
    dump = lambda o: json.dumps(o, ensure_ascii=ascii_)  # noqa: E731
    return {
        "flat": (dump({"en": en, "de": de}), None),
        "nested": (dump({"translation": {"de": de, "en": en}}), None),
        "blank": (draw(st.sampled_from(["", "  ", "\t"])), None),
        "missing": (dump({"en": en}), "row"),
        "type": (dump({"en": en, "de": draw(st.sampled_from([1, None, [de], {"x": de}, True]))}), "row"),
        "not_object": (dump(draw(st.sampled_from([[en, de], en, 3]))), "row"),
        "broken": (dump({"en": en, "de": de})[:-1], "row"),
        "surrogate": ('{"en": "a\\ud800b", "de": ' + dump(de) + "}", "surrogate"),
    }[kind]


def _tsv_row(draw) -> tuple[str, str | None]:
    en, de = draw(text), draw(text)
    kind = draw(st.sampled_from(["ok", "ok", "ok", "blank", "extra", "missing"]))
    return {
        "ok": (f"{en}\t{de}", None),
        "blank": ("", None),
        "extra": (f"{en}\t{de}\t{en}", "row" if (en + de).strip() else None),  # only tabs and spaces: blank
        "missing": (en, "row" if en.strip() else None),  # a blank line is an empty pair
    }[kind]


@st.composite
def corpus_case(draw):
    """(format, {file name: bytes}, skip_invalid_utf8, expected): expected is ("ok", lines) or
    ("error", file name, line number) for the first bad line in reading order."""
    fmt = draw(st.sampled_from(["parallel", "jsonl", "tsv"]))
    skip = draw(st.booleans())
    n = draw(st.integers(0, 12))
    if fmt == "parallel":
        n_de = n if draw(st.integers(0, 4)) else draw(st.integers(0, 12))  # now and then of another length
        en, en_bad = draw(text_file([draw(text) for _ in range(n)]))
        de, de_bad = draw(text_file([draw(text) for _ in range(n_de)]))
        for lineno in range(1, max(n, n_de) + 1):
            for name, bad, count in (("x.en", en_bad, n), ("x.de", de_bad, n_de)):
                if lineno <= count and bad[lineno - 1] and not skip:
                    return fmt, {"x.en": en, "x.de": de}, skip, ("error", name, lineno)
            if lineno > min(n, n_de):
                return fmt, {"x.en": en, "x.de": de}, skip, ("error", "x.en" if n > n_de else "x.de", lineno)
        return fmt, {"x.en": en, "x.de": de}, skip, ("ok", n)
    rows = [(_json_row if fmt == "jsonl" else _tsv_row)(draw) for _ in range(n)]
    header = fmt == "tsv" and draw(st.booleans())
    lines = ([draw(st.sampled_from(["en\tde", "de\ten"]))] if header else []) + [r for r, _ in rows]
    data, bad = draw(text_file(lines))
    problems = [None] * header + [p for _, p in rows]
    name = f"x.{fmt}"
    pairs = 0
    for lineno, (problem, invalid) in enumerate(zip(problems, bad), 1):
        if invalid:
            if not skip:
                return fmt, {name: data}, skip, ("error", name, lineno)
        elif problem == "row" or (problem == "surrogate" and not skip):
            return fmt, {name: data}, skip, ("error", name, lineno)
        is_header = lineno == 1 and fmt == "tsv" and sorted(lines[0].split("\t")) == ["de", "en"] and not invalid
        pairs += not is_header
    return fmt, {name: data}, skip, ("ok", pairs)


@pytest.fixture(scope="module")
def fuzz_vocab(tmp_path_factory):
    pairs = demo_texts(300)
    return build_vocabulary(lambda: iter(pairs), ("en", "de"), 200, True, tmp_path_factory.mktemp("v"), {"fuzz": 1})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=corpus_case())
def test_fuzzed_corpora_are_read_whole_or_refused_at_the_first_bad_line(tmp_path, fuzz_vocab, case):
    fmt, files, skip, expected = case
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # one folder per example (the fixture's is shared)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    path = folder / ("x" if fmt == "parallel" else f"x.{fmt}")
    corpus = Corpus("files", "train", path=str(path), skip_invalid_utf8=skip)
    dropped = Counter()
    try:
        examples = list(tokenized(corpus.pairs(), fuzz_vocab, "en", "de", 64, dropped))
    except ConfigError as e:
        assert expected[0] == "error", f"refused a good corpus: {e}"
        assert str(e).startswith(f"{folder / expected[1]}:{expected[2]}: "), (str(e), expected)
        assert "\n" not in str(e)
        return
    assert expected[0] == "ok", f"read a corpus that is bad at {expected[1:]}"
    assert len(examples) + sum(dropped.values()) == expected[1], (len(examples), dict(dropped))
    assert len({e.id for e in examples}) == len(examples)
    assert all(0 < len(e.src) < 64 and 0 < len(e.tgt) < 64 for e in examples)


def test_every_source_of_the_option_has_a_reader():
    from typing import get_args

    from tiedtransformer.data.corpus import READERS, Source

    assert set(READERS) == set(get_args(Source))


def test_a_new_source_is_one_reader(monkeypatch):
    """A reader in READERS is all a source needs: the corpus splits its pairs across ranks and workers, counts
    them, checks and describes through it."""
    from tiedtransformer.data import corpus as corpus_module
    from tiedtransformer.data.corpus import Corpus, Reader

    class Numbers(Reader):
        checked = []

        @staticmethod
        def describe(c):
            return {"numbers": c.demo_size}

        @staticmethod
        def check(c):
            Numbers.checked.append(c.split)

        @staticmethod
        def all_pairs(c):
            return ({"en": str(i), "de": f"{i}!"} for i in range(c.demo_size))

    monkeypatch.setitem(corpus_module.READERS, "numbers", Numbers)
    c = Corpus(source="numbers", split="train", demo_size=5)
    c.check()
    assert Numbers.checked == ["train"] and c.describe() == {"numbers": 5} and c.count() == 5
    assert [i for i, _ in c.pairs(rank=1, world_size=2)] == [1, 3]
    assert [p["de"] for _, p in Corpus(source="numbers", split="x", demo_size=5, lines=(3, 5)).pairs()] == ["3!", "4!"]
