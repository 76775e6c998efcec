import tempfile
from pathlib import Path

import lightning as L
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiedtransformer.callbacks import TranslationWriter
from tiedtransformer.callbacks.translation_writer import predict_input
from torch.utils.data import DataLoader

from tests.data_helpers import demo_texts, write_hub_shards, write_parallel
from tiedtransformer.data.datamodule import TranslationData
from tiedtransformer.data.stream import BatchStream
from tiedtransformer.errors import ConfigError


def data(**kw):
    args = dict(
        source="demo",
        demo_train_size=200,
        demo_valid_size=10,
        vocab_size=150,
        vocab_sample_size=200,
        num_workers=0,
        max_tokens=1024,
        max_len=128,
    )
    dm = TranslationData(**{**args, **kw})
    dm.setup(None)
    return dm


def collect(dm, split, rank, world, workers, epoch=0):
    h = dm.hparams
    stream = BatchStream(
        dm.corpus(split),
        dm.vocab,
        dm.direction,
        h.max_tokens,
        h.max_len,
        64,
        64,
        split == "train",
        h.seed,
        epoch,
        rank,
        world,
    )
    return list(DataLoader(stream, batch_size=None, num_workers=workers))


def test_direction_swaps_source_and_target():
    dm = data(direction="de-en")
    batch = collect(dm, "valid", 0, 1, 0)[0]
    assert dm.vocab.decode("de", [[t for t in batch.src[0].tolist() if t > 3]])[0].startswith(
        ("Der", "Die", "Das", "Ein", "Mein", "Meine")
    )


def test_two_ranks_by_two_workers_see_every_pair_once(tmp_path):
    pairs = demo_texts(300)
    dm = data(source="files", train_path=str(write_parallel(tmp_path / "train", pairs)))
    per_rank = [[i for b in collect(dm, "train", r, 2, 2) for i in b.ids.tolist()] for r in (0, 1)]
    assert not set(per_rank[0]) & set(per_rank[1])
    assert sorted(per_rank[0] + per_rank[1]) == list(range(300))
    assert abs(len(per_rank[0]) - len(per_rank[1])) <= 2


def test_hub_schema_two_ranks_by_two_workers_see_every_pair_once(tmp_path):
    pairs = demo_texts(200)
    folder = write_hub_shards(tmp_path / "hub", {"train": pairs, "validation": demo_texts(5, "validation")}, n_shards=4)
    dm = data(source="hub", hub_dataset=str(folder), hub_config=None)
    refs = [[r for b in collect(dm, "train", r, 2, 2) for r in b.refs] for r in (0, 1)]
    expected = sorted(p["de"] for p in pairs)
    assert sorted(refs[0] + refs[1]) == expected
    assert len(refs[0]) and len(refs[1])


def test_epochs_shuffle_differently_and_deterministically():
    dm = data()
    order = lambda epoch: [i for b in collect(dm, "train", 0, 1, 0, epoch) for i in b.ids.tolist()]  # noqa: E731
    assert order(0) == order(0) and order(0) != order(1)
    assert sorted(order(0)) == sorted(order(1))


def test_max_tokens_must_hold_the_longest_pair():
    with pytest.raises(ConfigError, match="data.max_tokens=64 .*data.max_len=128"):
        TranslationData(max_tokens=64, max_len=128)


def test_long_and_empty_pairs_are_dropped(tmp_path):
    pairs = [{"en": "a b c", "de": "x y z"}, {"en": "   ", "de": "leer"}, {"en": "word " * 200, "de": "lang"}] * 20
    prefix = write_parallel(tmp_path / "t", pairs)
    dm = data(source="files", train_path=str(prefix), vocab_size=40, max_len=64)
    ids = sorted(i for b in collect(dm, "train", 0, 1, 0) for i in b.ids.tolist())
    assert ids == list(range(0, 60, 3))


def test_predict_batches_keep_input_order_ids(tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("The dog sees the cat.\nThe cats sleep.\n")
    dm = data(predict_path=str(f))
    ids = sorted(i for b in dm.predict_dataloader() for i in b.ids.tolist())
    assert ids == [0, 1]


def test_skipped_pairs_are_counted_by_reason(tmp_path):
    pairs = [{"en": "a b c", "de": "x y z"}, {"en": "   ", "de": "leer"}, {"en": "word " * 200, "de": "lang"}] * 20
    prefix = write_parallel(tmp_path / "t", pairs)
    dm = data(source="files", train_path=str(prefix), vocab_size=40, max_len=64)
    batches = collect(dm, "train", 0, 1, 0)
    total = {}
    for b in batches:
        for k, v in b.dropped.items():
            total[k] = total.get(k, 0) + v
    assert total.get("empty") == 20 and total.get("too_long") == 20 and not total.get("invalid_utf8")


def test_checkpoints_carry_the_vocabulary_and_another_vocabulary_is_refused():
    from tiedtransformer.run.checkpoint import checkpoint_data

    dm = data()
    state = dm.state_dict()
    assert state["vocab_tokens"]["src"] == dm.vocab.pieces("en") and state["direction"] == "en-de"
    assert state["train_position"] is None  # no training stream yet
    assert state["vocab_models"]["tgt"] == dm.vocab.model_bytes("de")
    dm.load_state_dict(state)  # its own: accepted
    assert checkpoint_data({"TranslationData": state}) == state
    assert checkpoint_data({"vocab_tokens": state["vocab_tokens"]}) == {"vocab_tokens": state["vocab_tokens"]}
    other = data(vocab_size=120)
    with pytest.raises(ConfigError, match="vocabulary differs from this run's"):
        other.load_state_dict(state)


def test_test_holdout_splits_the_training_files_and_the_vocabulary_never_sees_the_test(tmp_path, monkeypatch):
    monkeypatch.setenv("TIEDTRANSFORMER_CACHE", str(tmp_path / "cache"))
    pairs = demo_texts(60)
    prefix = write_parallel(tmp_path / "c" / "train", pairs)
    dm = data(source="files", train_path=str(prefix), valid_path=str(prefix), test_holdout=10, vocab_size=120)
    train = [p for _, p in dm.corpus("train").pairs()]
    test = dm.eval_pairs("test")
    assert train == pairs[:50] and test == [(p["en"], p["de"]) for p in pairs[50:]]  # the vocabulary reads train
    assert dm.corpus("train").describe() != data(source="files", train_path=str(prefix)).corpus("train").describe()
    # shards of the held-out split still cover it once
    ids = sorted(i for r in range(2) for i, _ in dm.corpus("test").pairs(r, 2))
    assert ids == list(range(10))
    for bad in (dict(source="demo"), dict(test_path=str(prefix))):
        with pytest.raises(ConfigError, match="test_holdout"):
            TranslationData(**{"source": "files", "train_path": str(prefix), "test_holdout": 5, **bad})
    with pytest.raises(ConfigError, match="leaves no training pairs"):
        data(source="files", train_path=str(prefix), valid_path=str(prefix), test_holdout=60).corpus("train")


# --- predict under a fuzzer: one output line per input line, in order ---------------------------


class EchoModule(L.LightningModule):
    """Stands in for a trained model: its "translation" is the source sentence itself (decoded from
    the ids the model would get), so each output line shows which input line it came from."""

    def predict_step(self, batch, batch_idx):
        dm = self.trainer.datamodule
        ids = [[t for t in row.tolist() if t > 3] for row in batch.src]  # no specials
        return list(zip(batch.ids.tolist(), dm.vocab.decode(dm.src_lang, ids)))


@pytest.fixture(scope="module")
def predict_data():
    return data(max_len=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(
        st.one_of(
            st.sampled_from(["", "   ", "\t", "The dog sees the cat.", "der Hund", "\u2028", "a\rb", "\x00", "\u200b"]),
            st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\n"), max_size=30),
            st.just("the big dog " * 40),  # longer than max_len: translated from its first tokens
        ),
        max_size=15,
    ),
    crlf=st.booleans(),
)
def test_predict_gives_one_line_per_input_line_in_order(tmp_path, capsys, predict_data, lines, crlf):
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    src = folder / "in.txt"
    src.write_bytes("".join(line + ("\r\n" if crlf else "\n") for line in lines).encode())
    dm = predict_data
    dm.hparams.predict_path = str(src)
    writer = TranslationWriter(str(folder / "out.txt"))
    trainer = L.Trainer(callbacks=[writer], logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.predict(EchoModule(), datamodule=dm, return_predictions=False)
    out = (folder / "out.txt").read_bytes().decode("utf-8").split("\n")
    assert out[-1] == "" and len(out) - 1 == len(lines)  # one line per input line, each ended by \n
    read_back = [line.rstrip("\r\n") for line in src.read_bytes().decode("utf-8").split("\n")[:-1]]
    for given_, got in zip(read_back, out):
        if not given_.strip():
            assert got == ""  # a blank line gives an empty line, without the model
        else:
            ids = dm.vocab.encode("en", [given_.strip()])[0][: dm.hparams.max_len - 1]
            assert got == " ".join(dm.vocab.decode("en", [[t for t in ids if t > 3]])[0].splitlines())
    long = [i + 1 for i, x in enumerate(read_back) if len(dm.vocab.encode("en", [x.strip()])[0]) > 11]
    err = capsys.readouterr().err
    assert (f"{len(long)} of {len(lines)} lines have more than data.max_len=12 tokens" in err) == bool(long)
    assert predict_input(trainer).truncated == long  # what the writer was handed, beside the batches


def test_only_the_training_stream_forks_workers():
    """Validation and test batches are few and quick to make: no worker process is started for them."""
    dm = data(num_workers=2)
    dm.trainer = None
    assert dm._stream("train", 0).num_workers == 2
    assert dm.val_dataloader().num_workers == 0 and dm.test_dataloader().num_workers == 0
    assert len(list(dm.val_dataloader())) > 0


def test_the_training_workers_live_across_epochs_and_stream_each_epochs_batches():
    dm = data(num_workers=2)
    dm.trainer = None

    def rows(batches):
        return [b.src.tolist() for b in batches]

    pids = set()
    for epoch in (0, 1, 2, 1):  # a pass may be any epoch (a resumed run goes back to its own)
        loader = dm._stream("train", epoch)
        got = rows(loader)
        fresh = DataLoader(dm.batch_stream("train", epoch), batch_size=None, num_workers=2)
        assert got == rows(fresh), f"epoch {epoch}"
        pids.add(tuple(w.pid for w in loader._iterator._workers))
    assert len(pids) == 1  # the same two worker processes for every epoch
    assert rows(dm._stream("train", 0)) != rows(dm._stream("train", 1))  # epochs shuffle differently
    # a pass abandoned half way (limit_train_batches) does not leak into the next one
    it = iter(dm._stream("train", 2))
    next(it)
    assert rows(dm._stream("train", 0)) == rows(DataLoader(dm.batch_stream("train", 0), batch_size=None, num_workers=2))


def test_checkpoints_file_the_datamodule_state_under_the_key_the_readers_use():
    from tiedtransformer.run.checkpoint import DATA_STATE_KEY

    assert DATA_STATE_KEY == TranslationData.__qualname__  # Lightning files a DataModule's state by its class name


def test_the_training_workers_stop_when_fit_ends():
    dm = data(num_workers=1)
    dm.trainer = None
    loader = dm._stream("train", 0)
    list(loader)
    workers = list(loader._iterator._workers)
    assert all(w.is_alive() for w in workers)
    dm.teardown("fit")
    assert not any(w.is_alive() for w in workers) and dm._train_loader is None
    assert len(list(dm._stream("train", 1))) > 0  # a later fit starts its own


@pytest.mark.slow
def test_a_training_loader_made_again_inside_a_fit_goes_on_at_its_position():
    from types import SimpleNamespace

    dm = data()
    dm.trainer = SimpleNamespace(accumulate_grad_batches=1, current_epoch=0, global_rank=0, world_size=1)
    first = dm.train_dataloader()
    for _ in first:  # the whole of epoch 0 trained
        first.batch_trained()
    dm.trainer.current_epoch = 1  # reload_dataloaders_every_n_epochs: Lightning asks again
    again = dm.train_dataloader()
    assert again.position() == {"epoch": 1, "trained": 0}
    assert [b.src.tolist() for b in again] == [b.src.tolist() for b in dm.batch_stream("train", 1)]
