from tiedtransformer.data.batching import Example, collate
from tiedtransformer.data.loader import TrainBatches


def make(seen: list):
    def loader(epoch):
        seen.append(epoch)
        return [collate([Example(10 * epoch + i, [5], [6], "")]) for i in range(3)]

    return loader


def train(loader: TrainBatches, n: int | None = None) -> list[int]:
    """Take (and train) n batches of one iteration, or all of them."""
    out = []
    for batch in loader:
        out.append(batch.ids.item())
        loader.batch_trained()
        if n is not None and len(out) == n:
            break
    return out


def test_each_iteration_is_the_next_epoch_without_ddp():
    seen = []
    loader = TrainBatches(make(seen))
    assert train(loader) == [0, 1, 2] and train(loader) == [10, 11, 12]
    assert seen == [0, 1]


def test_the_state_is_the_position_after_the_last_trained_batch_not_the_last_fetched():
    loader = TrainBatches(make([]))
    it = iter(loader)
    next(it)
    loader.batch_trained()
    next(it)  # fetched ahead, not trained
    assert loader.position() == {"epoch": 0, "trained": 1}
    resumed = TrainBatches(make([]))
    resumed.seek(loader.position())
    assert train(resumed) == [1, 2] and train(resumed) == [10, 11, 12]  # then the next epoch


def test_after_an_epochs_last_batch_the_state_is_the_next_epochs_start():
    loader = TrainBatches(make([]))
    train(loader)
    assert loader.position() == {"epoch": 1, "trained": 0}
    resumed = TrainBatches(make([]))
    resumed.seek(loader.position())
    first = iter(resumed)  # Lightning may take a first iterator, then close the old epoch and ask again
    next(first)
    assert train(resumed) == [10, 11, 12]


def test_an_iteration_cut_short_continues_the_same_epoch():
    loader = TrainBatches(make([]))
    assert train(loader, 2) == [0, 1]
    assert train(loader) == [2] and train(loader) == [10, 11, 12]


def test_with_accumulation_every_epoch_ends_on_a_whole_update_also_when_resumed_in_its_padding():
    loader = TrainBatches(make([]), batches_per_update=2)
    assert train(loader) == [0, 1, 2, -1]  # 3 batches and one stand-in: two whole updates
    assert train(loader) == [10, 11, 12, -1]
    resumed = TrainBatches(make([]), batches_per_update=2)
    resumed.seek({"epoch": 0, "trained": 3})  # stopped after the last real batch, inside the last update
    assert train(resumed) == [-1] and resumed.position() == {"epoch": 1, "trained": 0}
    assert train(TrainBatches(make([]), batches_per_update=3)) == [0, 1, 2]  # already whole: nothing added
