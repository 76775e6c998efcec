"""Training logic around :class:`~tiedtransformer.model.TiedTransformer`: loss, optimiser and schedule,
validation loss / perplexity / BLEU, translation for ``predict``."""

from __future__ import annotations

import dataclasses
import math

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer

from tiedtransformer.analysis.scores import corpus_scores, sample_ids
from tiedtransformer.data.batching import Batch
from tiedtransformer.data.translating import TextIO
from tiedtransformer.errors import ConfigError, TrainingError
from tiedtransformer.model.network import TiedTransformer, TransformerConfig
from tiedtransformer.model.search import beam_search, greedy_decode
from tiedtransformer.run.checkpoint import check_compatible
from tiedtransformer.training.distributed import all_finite, all_gather_objects, full_copy, is_sharded, shard
from tiedtransformer.training.metrics import ValidationMetrics
from tiedtransformer.training.options import DecodeConfig, OptimConfig, Search, use_fused_adam, use_fused_loss
from tiedtransformer.training.schedule import budget_progress, lr_factor


class TranslationModule(L.LightningModule):
    """Trains a :class:`TiedTransformer` for translation.

    Args:
        net: The network's shape and tying (``model.net.*``; its vocabulary options are linked from
            ``data.vocab_size`` and ``data.joint_vocab``).
        optim: Objective, optimiser and learning-rate schedule (``model.optim.*``).
        decoding: The search of ``predict``, ``test`` and the final evaluation (``model.decoding.*``).
        val_bleu_sentences: BLEU and chrF at each validation are computed on a fixed, seeded sample of
            this many validation sentences (in file order, the same at every validation; None: all).
        val_decode: The search used at each validation (greedy is cheap; the final evaluation uses
            ``decoding.search``).
        val_every_n_steps: Validate every N optimizer steps, counted across epochs, instead of at the end of
            each epoch: for corpora whose epoch is long (WMT). It sets Lightning's
            ``trainer.val_check_interval``, which counts training batches, to N x the gradient
            accumulation (``model.optim.tokens_per_update``), and ``trainer.check_val_every_n_epoch`` to
            null. (Every epoch ends on a whole update: see ``TrainBatches``.)
            None: Lightning's own options decide (by default at the end of each epoch).
        final_eval: When training ends, translate the whole validation set with ``decoding`` and report
            BLEU and chrF (``final/val_bleu``, ``summary.json``); the translations go to
            ``<run dir>/final-val.<target language>``.
        final_test: When training ends, also translate the whole test split the same way: BLEU and
            chrF with 95% bootstrap intervals (sacreBLEU, 1000 resamples) in ``summary.json``, the
            translations and references in ``<run dir>/final-test.<lang>`` and ``final-test.ref.<lang>``
            (``tiedtransformer compare`` tests runs against each other on them).
        compile: Run the teacher-forced network (training and validation loss) through
            ``torch.compile`` with dynamic shapes; decoding stays eager, and checkpoints are the same.
            Compiling takes a while at the start; it is meant for GPUs (``benchmarks/train_step.py``
            times it).
    """

    def __init__(
        self,
        net: TransformerConfig = TransformerConfig(),
        optim: OptimConfig = OptimConfig(),
        decoding: DecodeConfig = DecodeConfig(),
        val_bleu_sentences: int | None = 1000,
        val_decode: Search = "greedy",
        val_every_n_steps: int | None = None,
        final_eval: bool = True,
        final_test: bool = False,
        compile: bool = False,
    ):
        super().__init__()
        # A checkpoint loads them back as plain dicts (no code to unpickle): take either.
        net = net if isinstance(net, TransformerConfig) else TransformerConfig(**net)
        self.optim = optim if isinstance(optim, OptimConfig) else OptimConfig(**optim)
        self.decoding = decoding if isinstance(decoding, DecodeConfig) else DecodeConfig(**decoding)
        self.save_hyperparameters(
            {
                "net": dataclasses.asdict(net),
                "optim": dataclasses.asdict(self.optim),
                "decoding": dataclasses.asdict(self.decoding),
                "val_bleu_sentences": val_bleu_sentences,
                "val_decode": val_decode,
                "val_every_n_steps": val_every_n_steps,
                "final_eval": final_eval,
                "final_test": final_test,
                "compile": compile,
            }
        )
        self.net = TiedTransformer(net)
        if compile:
            self.net.compile_teacher_forcing()
        self.sacrebleu_signature: str | None = None
        self.chrf_signature: str | None = None
        self.final_scores: dict | None = None  # the final evaluation's BLEU, chrF, sentences, search
        # what the final evaluation translated, by stage ("val", "test"): hypotheses, references (test only)
        # and scores; the FinalTranslations callback writes them to the run directory
        self.final_outputs: dict[str, dict] = {}
        self.test_scores: dict | None = None  # the last `test`'s scores (the callback prints them)
        self.final_weights = "the final weights"  # CheckpointAveraging names the average it loaded
        self.skipped_steps = 0
        self.val_metrics = ValidationMetrics()  # summed over a validation's (or test's) batches and ranks
        self.text: TextIO | None = None  # from the datamodule, at setup: text to batches, ids to text
        # Under FSDP: an unsharded copy for evaluation (in a list, so that it is no submodule).
        self._full: list[TiedTransformer] = []

    def configure_model(self) -> None:
        """Under ``ModelParallelStrategy`` (``-c configs/fsdp.yaml``): shard the network with FSDP2.
        Other strategies (single device, DDP) leave it as it is."""
        mesh = self.device_mesh
        if mesh is None or is_sharded(self.net):
            return
        if self.hparams.compile:
            raise ConfigError(
                "model.compile=true is not supported with FSDP (ModelParallelStrategy); use DDP or "
                "leave model.compile off"
            )
        # Lightning's mesh is (data_parallel = nodes, tensor_parallel = devices per node); there is no
        # tensor parallelism here: on one node every rank holds a shard, across nodes HSDP.
        shard(self.net, mesh["tensor_parallel"] if mesh["data_parallel"].size() == 1 else mesh)

    def eval_net(self) -> TiedTransformer:
        """The network to evaluate and translate with: ``net`` itself, or under FSDP its unsharded copy
        taken at the start of the current validation, test or prediction."""
        return self._full[0] if self._full else self.net

    def refresh_eval_net(self) -> None:
        """Under FSDP, gather the current weights into the evaluation copy (collective: all ranks)."""
        self._full = [full_copy(self.net)] if is_sharded(self.net) else []

    def setup(self, stage: str) -> None:
        """Takes what translating needs from the datamodule (:meth:`TranslationData.text_io`), once."""
        dm = self.trainer.datamodule
        self.text = dm.text_io() if dm is not None and hasattr(dm, "text_io") else None

    def _text(self) -> TextIO:
        if self.text is None:
            raise ConfigError(
                "translating and scoring need the data's vocabulary and evaluation sets: run the module with "
                "TranslationData as its datamodule (tiedtransformer fit / validate / test / predict)"
            )
        return self.text

    # --- training -----------------------------------------------------------------------------

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        # read by Lightning's ThroughputMonitor (FLOP/s, and MFU on a device whose peak it knows)
        self.flops_per_batch = self.net.flops(batch.num_src_tokens, batch.num_tgt_tokens)

    def on_validation_batch_start(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.flops_per_batch = self.net.flops(batch.num_src_tokens, batch.num_tgt_tokens, backward=False)

    def _fused_loss(self) -> bool:
        return use_fused_loss(self.optim.fused_loss, self.device.type)

    def training_step(self, batch: Batch, batch_idx: int):
        out = self.net.loss(batch.src, batch.tgt_in, batch.tgt_out, self.optim.label_smoothing, self._fused_loss())
        loss = out.loss
        if batch.padding:  # a stand-in batch: same collectives as the other ranks, no gradient
            return loss * 0.0
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/ppl", torch.exp((out.nll_sum / out.tokens.clamp(min=1)).detach()))
        return loss

    def on_before_optimizer_step(self, optimizer) -> None:
        # Gradients here are already summed over DDP ranks (under FSDP each rank holds a shard, and
        # all_finite agrees the verdict), so every rank decides the same way.
        if all_finite([p.grad for p in self.net.parameters() if p.grad is not None]):
            return
        if self.optim.nonfinite == "stop":
            raise TrainingError(
                f"non-finite loss or gradient at step {self.global_step + 1} (epoch {self.current_epoch}); the "
                "weights are unchanged and still finite. Lower model.optim.lr, raise model.optim.warmup_steps, check the "
                "data, or pass --model.optim.nonfinite=skip to skip such updates."
            )
        for p in self.net.parameters():  # Adam skips parameters without a gradient: no update at all
            p.grad = None
        self.skipped_steps += 1
        self.log("train/skipped_steps", float(self.skipped_steps))

    def configure_optimizers(self):
        h = self.optim
        # fused: one kernel for all parameters (clipped by configure_gradient_clipping); otherwise
        # foreach, a few multi-tensor ops per step instead of a loop over parameters
        scaler = getattr(getattr(self._trainer, "precision_plugin", None), "scaler", None)
        fused = use_fused_adam(scaler is not None, is_sharded(self.net))
        opt = torch.optim.AdamW(
            self.net.parameters(),
            lr=h.lr,
            betas=tuple(h.betas),
            eps=h.adam_eps,
            weight_decay=h.weight_decay,
            **({"fused": True} if fused else {"foreach": True}),
        )
        if h.schedule != "inverse_sqrt" and self.budget_progress(0) is None:
            raise ConfigError(
                f"model.optim.schedule={h.schedule} decays the learning rate over the training budget, but the trainer "
                "has none it can see: set trainer.max_steps or trainer.max_time (e.g. --trainer.max_time=00:00:15:00), "
                "or use --model.optim.schedule=inverse_sqrt"
            )
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt,
            lambda step: lr_factor(step + 1, h.warmup_steps, h.schedule, self.budget_progress(step), h.final_lr_factor),
        )
        # "name": the key Lightning's LearningRateMonitor logs the rate under
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "name": "train/lr"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """``trainer.gradient_clip_val`` as Lightning clips, also for a fused AdamW under bf16 autocast:
        Lightning refuses any fused optimizer under mixed precision, though only a gradient scaler
        (16-mixed, where :func:`use_fused_adam` picks foreach) makes clipping there wrong."""
        if not any(g.get("fused") for g in optimizer.param_groups):
            return super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        if not gradient_clip_val:
            return None
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(params, gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(params, gradient_clip_val, foreach=True)

    def budget_progress(self, step: int) -> float | None:
        """Fraction of the trainer's budget (``max_steps``, ``max_time``) used after ``step`` optimizer steps;
        None without a trainer or a budget. Time is rank 0's, so that every rank sets the same rate."""
        t = self._trainer
        if t is None:
            return None
        timer = next((c for c in t.callbacks if isinstance(c, Timer)), None)
        elapsed = max_time = None
        if timer is not None and timer.time_remaining() is not None:
            elapsed = timer.time_elapsed()
            max_time = elapsed + timer.time_remaining()
            if t.world_size > 1:
                elapsed = t.strategy.broadcast(elapsed)
        return budget_progress(step, t.max_steps if t.max_steps > 0 else None, elapsed, max_time)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_compatible(
            checkpoint.get("hyper_parameters", {}), self.net.cfg, getattr(self._trainer, "ckpt_path", None)
        )

    # --- translation --------------------------------------------------------------------------

    def translate_ids(self, src: torch.Tensor, search: Search | None = None) -> list[list[int]]:
        h = self.decoding
        net = self.eval_net()
        if (search or h.search) == "greedy":
            return greedy_decode(net, src, h.max_len_a, h.max_len_b)
        return beam_search(net, src, h.beam_size, h.length_penalty, h.max_len_a, h.max_len_b)

    @torch.no_grad()
    def translate_split(self, split: str, n: int | None, search: str) -> tuple[list[int], list[str], list[str]]:
        """This rank's share of ``n`` sentences (a fixed seeded sample; None: all) of the validation or test
        split, translated as ``predict`` does: their positions in the split, translations and references."""
        text = self._text()
        pairs = text.eval_pairs(split)
        mine = sample_ids(len(pairs), n, text.seed)[self.global_rank :: self.trainer.world_size]
        done = []
        with self.trainer.precision_plugin.forward_context():
            for batch in text.source_batches([pairs[i][0] for i in mine]):
                hyps = text.decode(self.translate_ids(batch.src.to(self.device), search))
                done += [(mine[j], h) for j, h in zip(batch.ids.tolist(), hyps)]
        done.sort()
        return [i for i, _ in done], [h for _, h in done], [pairs[i][1] for i, _ in done]

    def score_split(self, split: str, search: str, n_bootstrap: int = 1) -> tuple[dict, list[str]]:
        """sacreBLEU's BLEU and chrF (with signatures, and bootstrap intervals with ``n_bootstrap``) of the whole
        split, and its translations in file order: the ranks translate their share and every rank gets all."""
        ids, hyps, _ = self.translate_split(split, None, search)
        done = sorted(x for part in all_gather_objects(list(zip(ids, hyps))) for x in part)
        hyps = [h for _, h in done]
        pairs = self._text().eval_pairs(split)
        scores = corpus_scores(hyps, [pairs[i][1] for i, _ in done], n_bootstrap)
        scores["search"] = self.decoding.describe(search)
        self._log_signatures(scores)
        return scores, hyps

    def _log_signatures(self, scores: dict) -> None:
        """The signatures say how scores were computed: logged once, and again if they change."""
        if scores["bleu_signature"] != self.sacrebleu_signature:
            self.sacrebleu_signature, self.chrf_signature = scores["bleu_signature"], scores["chrf_signature"]
            for logger in self.loggers:
                logger.log_hyperparams(
                    {"sacrebleu_signature": self.sacrebleu_signature, "chrf_signature": self.chrf_signature}
                )

    # --- validation and test ------------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        # Under FSDP, evaluation runs on a gathered copy: ranks may have different numbers of
        # validation batches and sentences to search, which per-layer collectives would not survive.
        self.refresh_eval_net()
        self.val_metrics.reset()

    on_test_epoch_start = on_validation_epoch_start

    def on_predict_epoch_start(self) -> None:
        self.refresh_eval_net()

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")
        self._full = []  # training goes on with the sharded network

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")
        self._full = []

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        out = self.eval_net().loss(
            batch.src, batch.tgt_in, batch.tgt_out, self.optim.label_smoothing, self._fused_loss()
        )
        m = self.val_metrics
        m.loss.update(out.loss_sum.detach().double())
        m.nll.update(out.nll_sum.detach().double())
        m.tokens.update(out.tokens.double())

    test_step = validation_step

    def _epoch_end(self, stage: str) -> None:
        """The pass's loss and perplexity; BLEU and chrF of the validation sample (or the whole test split), each
        rank scoring its share of the sentences into the metric states the ranks sync."""
        m = self.val_metrics
        loss_sum, nll_sum, tokens = (float(x.compute()) for x in (m.loss, m.nll, m.tokens))
        tokens = max(tokens, 1.0)
        # Already summed over ranks, so every rank logs the same value (sync_dist averages equals).
        self.log(f"{stage}/loss", loss_sum / tokens, sync_dist=True)
        self.log(f"{stage}/ppl", math.exp(min(nll_sum / tokens, 50.0)), sync_dist=True)
        h = self.hparams
        if self.trainer.sanity_checking or (stage == "val" and h.val_bleu_sentences == 0):
            return
        n, search = (h.val_bleu_sentences, h.val_decode) if stage == "val" else (None, self.decoding.search)
        _, hyps, refs = self.translate_split("valid" if stage == "val" else "test", n, search)
        for metric in (m.bleu, m.chrf):
            metric.update(hyps, refs)
        m.sentences.update(float(len(hyps)))
        scores = {k: float(getattr(m, k).compute()) for k in ("bleu", "chrf", "sentences")}
        if stage == "test":
            self.test_scores = scores | {
                "sentences": int(scores["sentences"]),
                "search": self.decoding.describe(search),
                "bleu_signature": m.bleu.signature(),
                "chrf_signature": m.chrf.signature(),
            }
        self.log(f"{stage}/bleu", scores["bleu"], prog_bar=True, sync_dist=True)
        self.log(f"{stage}/chrf", scores["chrf"], sync_dist=True)
        self.log(f"{stage}/bleu_sentences", scores["sentences"], sync_dist=True)

    def on_train_end(self) -> None:
        """The final evaluation: the whole validation set (and the test set, with ``final_test``) with
        the ``predict`` search, on the weights training ended with (averaged, if checkpoint averaging
        is on; it runs before this hook)."""
        h = self.hparams
        if not (h.final_eval or h.get("final_test")):
            return
        self.refresh_eval_net()
        self.eval()
        self.final_outputs = {}
        self.final_scores = {"weights": self.final_weights, "search": self.decoding.describe(self.decoding.search)}
        for split, stage, wanted in (("valid", "val", h.final_eval), ("test", "test", h.get("final_test"))):
            if wanted:
                self.final_scores |= self._final_split(split, stage)
        self._full = []

    def _final_split(self, split: str, stage: str) -> dict:
        """One split translated whole: its scores (keys ``<stage>_bleu`` ...) logged and returned, the
        translations (and, for the test split, the references) kept in ``final_outputs``."""
        n_bootstrap = 1000 if split == "test" else 1
        scores, hyps = self.score_split(split, self.decoding.search, n_bootstrap)
        for logger in self.loggers:
            logger.log_metrics(
                {f"final/{stage}_bleu": scores["bleu"], f"final/{stage}_chrf": scores["chrf"]}, step=self.global_step
            )
        refs = [r for _, r in self._text().eval_pairs(split)] if split == "test" else None
        self.final_outputs[stage] = {"split": split, "hyps": hyps, "refs": refs, "scores": scores}
        keys = ("bleu", "chrf", "sentences", "bleu_ci", "chrf_ci")
        return {f"{stage}_{k}": scores[k] for k in keys if k in scores}

    def predict_step(self, batch: Batch, batch_idx: int) -> list[tuple[int, str]]:
        return list(zip(batch.ids.tolist(), self._text().decode(self.translate_ids(batch.src))))
