"""The LightningDataModule: vocabulary, streamed token-bucketed batches, ranks and workers."""

from __future__ import annotations

from functools import partial
from typing import Literal

import lightning as L
import torch
from torch.utils.data import DataLoader

from tiedtransformer.cache import DEFAULT_CACHE, cache_root
from tiedtransformer.data.batching import Batch, Example, collate, token_buckets
from tiedtransformer.data.corpus import Corpus, Source
from tiedtransformer.data.loader import TrainBatches
from tiedtransformer.data.stream import BatchStream, Direction, languages
from tiedtransformer.data.translating import TextIO, read_predict_input
from tiedtransformer.data.vocab import Vocabulary, build_vocabulary
from tiedtransformer.errors import ConfigError
from tiedtransformer.model.network import TransformerConfig
from tiedtransformer.run.files import USE_OWN_CONFIG


class TranslationData(L.LightningDataModule):
    """Parallel EN-DE text as token-bucketed batches, with a SentencePiece vocabulary trained on it.

    Args:
        source: Where pairs come from: ``hub`` (a Hugging Face dataset, streamed), ``files`` (local
            text) or ``demo`` (generated offline from a small grammar).
        direction: Translation direction, ``en-de`` or ``de-en``.
        hub_dataset: Hub dataset id, or a local folder of parquet/JSON shards in the hub's schema
            (rows ``{"translation": {"de": ..., "en": ...}}``).
        hub_config: Hub dataset configuration (language pair).
        train_split: Hub or demo split for training.
        valid_split: Hub or demo split for validation (WMT14: newstest2013).
        test_split: Hub or demo split for testing (WMT14: newstest2014).
        train_path: ``files``: prefix ``X`` for ``X.en`` + ``X.de`` (one sentence per line), or a
            ``.jsonl`` / ``.tsv`` file.
        valid_path: ``files``: the validation corpus, as ``train_path``.
        test_path: ``files``: the test corpus, as ``train_path``.
        test_holdout: ``files``: hold out the last N pairs of the training corpus as the test split
            (for a corpus that has no test set of its own); training and the vocabulary read the rest,
            and ``test_path`` must be unset.
        predict_path: Text file of source sentences to translate (``predict``).
        demo_train_size: ``demo``: training pairs per epoch.
        demo_valid_size: ``demo``: held-out pairs for validation and test.
        vocab_size: Subword vocabulary size (per language if not joint); linked to ``model.net.vocab_size``.
        joint_vocab: One SentencePiece model for both languages (needed by tying ``src_tgt`` and
            ``three_way``); otherwise one per language.
        vocab_sample_size: Pairs sampled (uniformly, from the first ``vocab_max_scan``) to train it.
        vocab_max_scan: Pairs read while sampling; None reads the whole training stream.
        character_coverage: SentencePiece character coverage.
        cache_dir: Where trained vocabularies are kept, keyed by their inputs.
        max_tokens: Padded tokens per batch (sentences × longest side).
        max_len: Longest side in tokens (EOS included); longer pairs are skipped.
        shuffle_buffer: Pairs in the shuffle buffer of each worker.
        bucket_buffer: Pairs sorted together by length to cut batches.
        num_workers: DataLoader worker processes per rank for the training stream (validation and test
            batches are made in the training process).
        seed: Seed of shuffling and vocabulary sampling.
        skip_invalid_utf8: Skip lines of local files that are not valid UTF-8 instead of stopping.
    """

    def __init__(
        self,
        source: Source = "hub",
        direction: Direction = "en-de",
        hub_dataset: str = Corpus.hub_dataset,
        hub_config: str | None = Corpus.hub_config,
        train_split: str = "train",
        valid_split: str = "validation",
        test_split: str = "test",
        train_path: str | None = None,
        valid_path: str | None = None,
        test_path: str | None = None,
        test_holdout: int = 0,
        predict_path: str | None = None,
        demo_train_size: int = 100_000,
        demo_valid_size: int = 500,
        vocab_size: int = TransformerConfig.vocab_size,
        joint_vocab: bool = TransformerConfig.joint_vocab,
        vocab_sample_size: int = 1_000_000,
        vocab_max_scan: int | None = 4_000_000,
        character_coverage: float = 1.0,
        cache_dir: str = DEFAULT_CACHE,
        max_tokens: int = 4096,
        max_len: int = 256,
        shuffle_buffer: int = 50_000,
        bucket_buffer: int = 20_000,
        num_workers: int = 2,
        seed: int = 0,
        skip_invalid_utf8: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.src_lang, self.tgt_lang = languages(direction)
        self.direction, self.source = direction, source
        if max_len > max_tokens:
            raise ConfigError(
                f"data.max_tokens={max_tokens} cannot hold one pair of the longest allowed length "
                f"(data.max_len={max_len}); raise max_tokens or lower max_len"
            )
        if test_holdout and (source != "files" or test_path):
            raise ConfigError(
                f"data.test_holdout={test_holdout} holds out the end of data.train_path as the test split: it needs "
                "data.source=files and no data.test_path"
            )
        self._train_pairs: int | None = None  # pairs in the training files (test_holdout)
        self.vocab: Vocabulary | None = None
        self.train_stream: TrainBatches | None = None
        self._resume_position: dict | None = None  # from a checkpoint, for the training stream
        self._eval_pairs: dict[str, list[tuple[str, str]]] = {}
        self._train_loader: DataLoader | None = None  # the training stream's, whose workers live across epochs
        self._epoch_box: torch.Tensor | None = None  # shared with those workers: the epoch to stream next

    def corpus(self, split: str) -> Corpus:
        h = self.hparams
        common = dict(
            source=h.source,
            hub_dataset=h.hub_dataset,
            hub_config=h.hub_config,
            seed=h.seed,
            skip_invalid_utf8=h.skip_invalid_utf8,
        )
        if split == "valid":
            return Corpus(split=h.valid_split, path=h.valid_path, demo_size=h.demo_valid_size, **common)
        if split == "test" and not h.test_holdout:
            return Corpus(split=h.test_split, path=h.test_path, demo_size=h.demo_valid_size, **common)
        train = Corpus(split=h.train_split, path=h.train_path, demo_size=h.demo_train_size, **common)
        if not h.test_holdout:
            return train
        if self._train_pairs is None:
            train.check()
            self._train_pairs = train.count()
        cut = self._train_pairs - h.test_holdout
        if cut < 1:
            raise ConfigError(
                f"data.test_holdout={h.test_holdout} leaves no training pairs: {h.train_path} has {self._train_pairs}"
            )
        lines = (0, cut) if split == "train" else (cut, self._train_pairs)
        return Corpus(split=split if split == "test" else h.train_split, path=h.train_path, lines=lines, **common)

    def _build_vocab(self) -> Vocabulary:
        h, train = self.hparams, self.corpus("train")
        train.check()
        return build_vocabulary(
            pairs=lambda: (p for _, p in train.pairs() if p is not None),
            langs=(self.src_lang, self.tgt_lang),
            vocab_size=h.vocab_size,
            joint=h.joint_vocab,
            cache_dir=self.cache_dir,
            source_key=train.describe(),
            sample_size=h.vocab_sample_size,
            max_scan=h.vocab_max_scan,
            seed=h.seed,
            character_coverage=h.character_coverage,
        )

    @property
    def cache_dir(self) -> str:
        return str(cache_root(self.hparams.cache_dir))

    def prepare_data(self) -> None:
        self._build_vocab()  # once per node; setup() then finds it in the cache

    def setup(self, stage: str | None = None) -> None:
        if self.vocab is None:
            self.vocab = self._build_vocab()
        if stage in ("fit", "validate", "test"):
            self.corpus("test" if stage == "test" else "valid").check()

    def state_dict(self) -> dict:
        """What a checkpoint keeps of the data: its vocabulary (pieces, SentencePiece models, training
        counts) and direction, so that ``analyze``, ``predict`` and ``average`` need nothing else; and
        the training stream's position (epoch, batches trained), so that a resumed fit goes on with the
        batch that would have come next."""
        if self.vocab is None:
            return {}
        return {
            "train_position": self.train_stream.position() if self.train_stream is not None else None,
            **self.vocabulary_state(),
        }

    def vocabulary_state(self) -> dict:
        """The vocabulary (:meth:`Vocabulary.state`) and the direction, as checkpoints and dumps keep them."""
        return {**self.vocab.state(self.src_lang, self.tgt_lang), "direction": self.direction}

    def load_state_dict(self, state_dict: dict) -> None:
        """A checkpoint whose vocabulary differs from this data's cannot continue or be evaluated on it;
        its training position is where the training stream starts."""
        self._resume_position = state_dict.get("train_position")
        tokens = state_dict.get("vocab_tokens")
        if tokens and self.vocab is not None:
            if tokens != self.vocab.state(self.src_lang, self.tgt_lang)["vocab_tokens"]:
                where = getattr(self.trainer, "ckpt_path", None)
                raise ConfigError(
                    (f"{where}: " if where else "")
                    + "the checkpoint's vocabulary differs from this run's (other corpus, direction, vocab_size or "
                    f"sample). {USE_OWN_CONFIG}"
                )

    def _rank(self) -> tuple[int, int]:
        t = self.trainer
        return (t.global_rank, t.world_size) if t is not None else (0, 1)

    def batch_stream(self, split: str, epoch: int = 0, rank: int = 0, world_size: int = 1) -> BatchStream:
        """The batches of ``split`` for one epoch (shuffled by seed and epoch for ``train``) and one rank,
        as the loaders make them (they run it in their workers)."""
        h = self.hparams
        return BatchStream(
            self.corpus(split),
            self.vocab,
            self.direction,
            h.max_tokens,
            h.max_len,
            h.bucket_buffer,
            h.shuffle_buffer,
            split == "train",
            h.seed,
            epoch,
            rank,
            world_size,
        )

    def _stream(self, split: str, epoch: int) -> DataLoader:
        h = self.hparams
        if split == "train" and h.num_workers > 0:
            return self._persistent_train_loader(epoch)
        stream = self.batch_stream(split, epoch, *self._rank())
        # Its own generator: creating the loader must not draw from the global RNG (dropout's), or a
        # resumed run would see different dropout masks than an uninterrupted one.
        gen = torch.Generator().manual_seed(h.seed * 100_003 + epoch)
        # Validation and test batches are made in this process: they are few and quick to make, and a worker
        # for them would be one more process started at every validation.
        workers = h.num_workers if split == "train" else 0
        return DataLoader(stream, batch_size=None, num_workers=workers, persistent_workers=False, generator=gen)

    def _persistent_train_loader(self, epoch: int) -> DataLoader:
        """The training stream's loader: one for the whole fit, its workers started once and told each epoch
        through shared memory. A worker started per epoch would be a fresh fork of the training process
        every epoch, holding the pages that training then rewrites (benchmarks/soak.py: the process tree's
        peak memory then varied from epoch to epoch by up to a tenth); a persistent one pays that once."""
        if self._train_loader is None:
            self._epoch_box = torch.zeros(1, dtype=torch.long).share_memory_()  # made here: one per rank
            h = self.hparams
            stream = self.batch_stream("train", epoch, *self._rank())
            stream.epoch_box = self._epoch_box
            gen = torch.Generator().manual_seed(h.seed * 100_003)
            self._train_loader = DataLoader(
                stream, batch_size=None, num_workers=h.num_workers, persistent_workers=True, generator=gen
            )
        self._epoch_box[0] = epoch  # read by each worker when the next pass begins (iter() in TrainBatches)
        return self._train_loader

    def teardown(self, stage: str) -> None:
        """At the end of fit: the training workers stop (they would live on through the final evaluation),
        and a later fit makes its own (its ranks and corpus may differ)."""
        if stage == "fit" and self._train_loader is not None:
            iterator = self._train_loader._iterator
            if iterator is not None:
                iterator._shutdown_workers()
            self._train_loader, self._epoch_box = None, None

    def train_dataloader(self) -> TrainBatches:
        per_update = self.trainer.accumulate_grad_batches if self.trainer is not None else 1
        previous, self.train_stream = self.train_stream, TrainBatches(partial(self._stream, "train"), per_update)
        if self._resume_position:  # once: from a checkpoint
            self.train_stream.seek(self._resume_position)
            self._resume_position = None
        elif previous is not None and self.trainer is not None and self.trainer.current_epoch > 0:
            # made again inside a fit (reload_dataloaders_every_n_epochs): it goes on where that one was
            self.train_stream.seek(previous.position())
        return self.train_stream

    def val_dataloader(self):
        return self._stream("valid", 0)

    def test_dataloader(self):
        return self._stream("test", 0)

    def eval_pairs(self, split: Literal["valid", "test"]) -> list[tuple[str, str]]:
        """Every (source, reference) pair of the validation or test split, in file order, including
        pairs that training would skip as too long or empty: BLEU is over the whole set. Lines that are
        not valid UTF-8 (with ``skip_invalid_utf8``) are left out. Read once and kept."""
        if split not in self._eval_pairs:
            corpus = self.corpus(split)
            corpus.check()
            self._eval_pairs[split] = [
                (p[self.src_lang].strip(), p[self.tgt_lang].strip()) for _, p in corpus.pairs() if p is not None
            ]
        return self._eval_pairs[split]

    def source_batches(self, texts: list[str], truncated: list[int] | None = None) -> list[Batch]:
        """Source sentences as batches to translate (``predict`` and BLEU): token-bucketed by length,
        each batch's ``ids`` the positions in ``texts``; a sentence longer than ``max_len`` tokens is
        cut to it (its position goes to ``truncated``)."""
        keep = self.hparams.max_len - 1  # and EOS
        ids = self.vocab.encode(self.src_lang, [t.strip() for t in texts])
        if truncated is not None:
            truncated += [i for i, s in enumerate(ids) if len(s) > keep]
        examples = [Example(i, s[:keep], [], "") for i, s in enumerate(ids)]
        return [collate(g) for g in token_buckets(examples, self.hparams.max_tokens, len(examples) or 1, None)]

    def text_io(self) -> TextIO:
        """What the module needs to translate and score (handed over once, at its setup)."""
        return TextIO(
            seed=self.hparams.seed,
            eval_pairs=self.eval_pairs,
            source_batches=self.source_batches,
            decode=partial(self.vocab.decode, self.tgt_lang),
        )

    def predict_dataloader(self) -> DataLoader:
        """This rank's share of the lines of ``predict_path`` that have text (:class:`PredictInput`, which also
        tells the writer how many lines there are and which are blank)."""
        h = self.hparams
        if not h.predict_path:
            raise ConfigError("predict needs the sentences to translate: set data.predict_path=FILE")
        inp = read_predict_input(
            h.predict_path, self.tgt_lang, self.source_batches, *self._rank(), h.skip_invalid_utf8, h.max_len
        )
        return DataLoader(inp, batch_size=None, generator=torch.Generator())
