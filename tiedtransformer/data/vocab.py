"""SentencePiece BPE vocabularies: trained on a bounded random sample of the training stream, joint
(one model for both languages) or one per language, and cached on disk by a key of their inputs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import sentencepiece as spm
from tqdm.auto import tqdm

from tiedtransformer.atomic import atomic_dir
from tiedtransformer.errors import ConfigError
from tiedtransformer.specials import BOS_ID, EOS_ID, PAD_ID, UNK_ID


def reservoir_sample(items: Iterable, n: int, seed: int, max_scan: int | None = None) -> list:
    """A uniform random sample of ``n`` items from the first ``max_scan`` (all if None), in one pass
    with O(n) memory (Vitter's algorithm R)."""
    rng = random.Random(seed)
    sample: list = []
    for i, item in enumerate(items):
        if max_scan is not None and i >= max_scan:
            break
        if i < n:
            sample.append(item)
        else:
            j = rng.randint(0, i)
            if j < n:
                sample[j] = item
    rng.shuffle(sample)
    return sample


class Vocabulary:
    """One SentencePiece model per language (the same file for both when joint). Picklable, so it
    travels to DataLoader workers; processors are loaded lazily in each process."""

    def __init__(self, model_files: dict[str, str]):
        self.model_files = dict(model_files)
        self._sp: dict[str, spm.SentencePieceProcessor] = {}

    def __getstate__(self):
        return {"model_files": self.model_files}

    def __setstate__(self, state):
        self.__init__(state["model_files"])

    @property
    def joint(self) -> bool:
        return len(set(self.model_files.values())) == 1

    def processor(self, lang: str) -> spm.SentencePieceProcessor:
        if lang not in self._sp:
            self._sp[lang] = spm.SentencePieceProcessor(model_file=self.model_files[lang])
        return self._sp[lang]

    def size(self, lang: str) -> int:
        return self.processor(lang).get_piece_size()

    def encode(self, lang: str, texts: list[str]) -> list[list[int]]:
        return self.processor(lang).encode(texts)

    def decode(self, lang: str, ids: list[list[int]]) -> list[str]:
        return self.processor(lang).decode(ids)

    def model_bytes(self, lang: str) -> bytes:
        return Path(self.model_files[lang]).read_bytes()

    def counts(self, lang: str) -> list[int] | None:
        """How often each token occurs in the sample the vocabulary was trained on (row order)."""
        f = Path(self.model_files[lang]).with_name("counts.json")
        return json.loads(f.read_text())[lang] if f.is_file() else None

    def pieces(self, lang: str) -> list[str]:
        """Token text by id (row order of the embedding matrices)."""
        sp = self.processor(lang)
        return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]

    def state(self, src_lang: str, tgt_lang: str) -> dict:
        """The vocabulary as checkpoints and embedding dumps keep it, each by side: pieces (row
        order), the SentencePiece models and the training counts. The one place this is assembled;
        :func:`tiedtransformer.analysis.dumps.dump_from_model` reads it."""
        sides = {"src": src_lang, "tgt": tgt_lang}
        return {
            "vocab_tokens": {k: self.pieces(lang) for k, lang in sides.items()},
            "vocab_models": {k: self.model_bytes(lang) for k, lang in sides.items()},
            "vocab_counts": {k: self.counts(lang) for k, lang in sides.items()},
        }


def vocab_key(**inputs) -> str:
    """Cache key: a hash of everything that determines the trained model."""
    blob = json.dumps({**inputs, "sentencepiece": spm.__version__}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _train_one(sentences: list[str], prefix: Path, vocab_size: int, character_coverage: float, what: str) -> None:
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            model_type="bpe",
            vocab_size=vocab_size,
            character_coverage=character_coverage,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            num_threads=os.cpu_count() or 1,
            max_sentence_length=1 << 16,
            minloglevel=2,
        )
    except RuntimeError as e:
        raise ConfigError(
            f"SentencePiece could not train a {vocab_size}-token vocabulary on {len(sentences)} sampled "
            f"sentences of {what}: {str(e).strip()}. Lower data.vocab_size, or sample more text with "
            "data.vocab_sample_size."
        ) from None
    prefix.with_suffix(".model").write_bytes(model.getvalue())


def build_vocabulary(
    pairs: Callable[[], Iterator[dict[str, str]]],
    langs: tuple[str, str],
    vocab_size: int,
    joint: bool,
    cache_dir: str | Path,
    source_key: dict,
    sample_size: int = 1_000_000,
    max_scan: int | None = None,
    seed: int = 0,
    character_coverage: float = 1.0,
) -> Vocabulary:
    """Train (or reuse from ``cache_dir``) the vocabulary for ``langs`` from a sample of ``pairs()``.

    ``source_key`` describes where the pairs come from; with the other arguments it forms the cache
    key, so the sample is only read when no cached model matches.
    """
    key = vocab_key(
        source=source_key,
        langs=sorted(langs),
        vocab_size=vocab_size,
        joint=joint,
        sample_size=sample_size,
        max_scan=max_scan,
        seed=seed,
        character_coverage=character_coverage,
    )
    final = Path(cache_dir) / "vocab" / key
    names = {lang: ("joint" if joint else lang) for lang in langs}
    files = {lang: str(final / f"{name}.model") for lang, name in names.items()}
    if all(Path(f).is_file() for f in files.values()):
        return Vocabulary(files)

    reading = tqdm(
        pairs(),
        desc="sampling sentences for the vocabulary",
        total=max_scan,
        unit=" pairs",
        mininterval=5,
        disable=None,
    )
    sample = reservoir_sample(reading, sample_size, seed=seed, max_scan=max_scan)
    print(f"training a {vocab_size}-token SentencePiece BPE model on {len(sample)} pairs", flush=True)
    if not sample:
        raise ConfigError(f"no sentence pairs to train a vocabulary on ({source_key}): the corpus is empty")
    with atomic_dir(final, replace=False) as tmp:  # a reader sees no model or a whole one
        if joint:
            text = [p[lang] for p in sample for lang in langs]
            _train_one(text, tmp / "joint", vocab_size, character_coverage, f"{'+'.join(langs)} (joint)")
        else:
            for lang in langs:
                _train_one([p[lang] for p in sample], tmp / lang, vocab_size, character_coverage, lang)
        counts = {}
        for lang in langs:  # token frequencies, so that analyses can leave out rare tokens
            sp = spm.SentencePieceProcessor(model_file=str(tmp / f"{names[lang]}.model"))
            c = [0] * sp.get_piece_size()
            for ids in sp.encode([p[lang] for p in sample]):
                for t in ids:
                    c[t] += 1
            counts[lang] = c
        (tmp / "counts.json").write_text(json.dumps(counts))
        (tmp / "inputs.json").write_text(json.dumps({"source": source_key, "vocab_size": vocab_size}, default=str))
    return Vocabulary(files)
