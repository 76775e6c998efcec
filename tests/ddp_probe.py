"""A callback the DDP test injects: it records, per rank, the pair ids of every training batch and
whether the tied matrices still share storage after the strategy wrapped the model."""

import json
import os

import lightning as L


class RecordPairs(L.Callback):
    def __init__(self, out_dir: str):
        self.out_dir, self.ids, self.stand_ins = out_dir, [], 0

    def on_train_start(self, trainer, pl_module):
        mats = pl_module.net.embedding_matrices()
        self.tied = {a: [b for b in mats if mats[a].data_ptr() == mats[b].data_ptr() and a != b] for a in mats}
        self.wrapped = type(trainer.strategy.model).__name__

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch.padding:
            self.stand_ins += 1
        else:
            self.ids += [(trainer.current_epoch, i) for i in batch.ids.tolist()]

    def on_fit_end(self, trainer, pl_module):
        path = os.path.join(self.out_dir, f"rank{trainer.global_rank}.json")
        with open(path, "w") as f:
            json.dump({"ids": self.ids, "stand_ins": self.stand_ins, "tied": self.tied, "wrapped": self.wrapped}, f)
