"""Callbacks the tests inject through the CLI (``--trainer.callbacks+=tests.probes.X``) to see what
training did, per process."""

import json
import os

import lightning as L


class RecordPairs(L.Callback):
    """Per rank: the pair ids of every training batch, stand-in batches, and whether the tied
    matrices still share storage after the strategy wrapped the model."""

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


class RecordSteps(L.Callback):
    """Appends one JSON line per optimizer step: the step, the batch's pair ids and its loss."""

    def __init__(self, out_file: str):
        self.out_file = out_file

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        with open(self.out_file, "a") as f:
            rec = {
                "step": trainer.global_step,
                "epoch": trainer.current_epoch,
                "ids": batch.ids.tolist(),
                "loss": float(outputs["loss"]),
            }
            f.write(json.dumps(rec) + "\n")


class StopAt(L.Callback):
    """Interrupts training after a given step: with SIGTERM (as a scheduler's preemption), SIGINT
    (Ctrl-C), or an exception in the next step (as a failing forward pass would)."""

    def __init__(self, step: int, how: str = "sigterm"):
        self.step, self.how = step, how

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step and self.how != "exception":
            import signal

            os.kill(os.getpid(), signal.SIGTERM if self.how == "sigterm" else signal.SIGINT)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step and self.how == "exception":
            raise RuntimeError("injected failure")


class PoisonGradient(L.Callback):
    """Makes one gradient NaN at a given step, as an overflow would."""

    def __init__(self, step: int):
        self.step = step

    def on_after_backward(self, trainer, pl_module):
        if trainer.global_step + 1 == self.step:
            next(pl_module.parameters()).grad.view(-1)[0] = float("nan")


class RecordSharding(RecordPairs):
    """RecordPairs, plus how FSDP holds the token matrices: which names are one Parameter, each
    matrix's rows on this rank against its full rows, and how often each matrix appears among the
    parameters of the root's FSDP group (the group that gathers and reduce-scatters it)."""

    def on_train_start(self, trainer, pl_module):
        super().on_train_start(trainer, pl_module)
        net = pl_module.net
        mats = net.embedding_matrices()
        self.tied = {a: [b for b in mats if mats[b] is mats[a] and a != b] for a in mats}
        group = [p.sharded_param for p in net._get_fsdp_state()._fsdp_param_group.fsdp_params]
        self.sharding = {
            a: {
                "type": type(m).__name__,
                "local_rows": m.to_local().shape[0],
                "rows": m.shape[0],
                "in_root_group": sum(p is m for p in group),
            }
            for a, m in mats.items()
        }
        self.wrapped = type(net).__name__

    def on_fit_end(self, trainer, pl_module):
        super().on_fit_end(trainer, pl_module)
        path = os.path.join(self.out_dir, f"sharding{trainer.global_rank}.json")
        with open(path, "w") as f:
            json.dump(self.sharding, f)


class RunsCode:
    """Unpickling this calls os.system: what a crafted checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))
