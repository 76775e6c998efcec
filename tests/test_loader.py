from tiedtransformer.data.batching import Example, collate
from tiedtransformer.data.loader import RankBatches


def test_rank_batches_pass_the_epoch_and_run_alone_without_ddp():
    seen = []

    def make(epoch):
        seen.append(epoch)
        return [collate([Example(epoch, [5], [6], "")])]

    epoch = iter([3, 4])
    loader = RankBatches(make, epoch=lambda: next(epoch))
    assert [b.ids.item() for b in loader] == [3]
    assert [b.ids.item() for b in loader] == [4]
    assert seen == [3, 4]
