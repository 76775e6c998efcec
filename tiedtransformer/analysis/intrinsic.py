"""Intrinsic quality of token matrices, as in Press & Wolf's tables: Spearman correlation of cosine
similarity with human judgements (SimLex-999, WordSim-353), and a "plural direction" probe. The
human data ships inside the gensim wheel (optional extra ``intrinsic``); without gensim this part is
skipped and says so."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm
import torch

from tiedtransformer.analysis.similarity import normalize_rows
from tiedtransformer.specials import UNK_ID

DATASETS = {"simlex999": "simlex999.txt", "wordsim353": "wordsim353.tsv"}


def gensim_test_data() -> Path | None:
    """The data folder inside the installed gensim package, found without importing gensim (that
    import takes seconds, and only its data files are used)."""
    import importlib.util

    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data"
    return path if (path / DATASETS["simlex999"]).is_file() else None


def read_word_pairs(path: Path) -> list[tuple[str, str, float]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        a, b, score = line.split("\t")[:3]
        rows.append((a, b, float(score)))
    return rows


def read_plural_pairs(path: Path) -> list[tuple[str, str]]:
    """The (singular, plural) pairs of the ``gram8-plural`` section of questions-words.txt."""
    pairs, inside = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            inside = line.strip() == ": gram8-plural"
        elif inside:
            a, b, c, d = line.split()
            pairs |= {(a, b), (c, d)}
    return sorted(pairs)


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks from 1, ties get their average rank (one sort: the vocabulary's counts have thousands of ties)."""
    values, order = x.sort()
    _, inverse, counts = torch.unique_consecutive(values, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).to(torch.float64)
    average = ends - (counts.to(torch.float64) - 1) / 2  # the mean of ranks ends-counts+1 .. ends
    ranks = torch.empty_like(x, dtype=torch.float64)
    ranks[order] = average[inverse]
    return ranks


def spearman(x, y) -> float:
    rx, ry = _ranks(torch.as_tensor(x, dtype=torch.float64)), _ranks(torch.as_tensor(y, dtype=torch.float64))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = (rx.norm() * ry.norm()).item()
    return float((rx * ry).sum() / denom) if denom else float("nan")


@dataclass(frozen=True)
class CoveredPairs:
    """The word pairs whose words split into known pieces, each word split once: ``pieces`` (the pieces of
    every word, one after another), ``owner`` (the word of each piece), ``counts`` (pieces per word), ``a``
    and ``b`` (the words of each pair) and ``human`` (its rating)."""

    pieces: torch.Tensor
    owner: torch.Tensor
    counts: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    human: list[float]
    total: int  # pairs in the set, covered or not


def covered_pairs(sp, pairs: list[tuple[str, str, float]]) -> CoveredPairs:
    index: dict[str, int | None] = {}
    pieces: list[int] = []
    owner: list[int] = []
    counts: list[int] = []

    def word(w: str) -> int | None:
        if w not in index:
            ids = sp.encode(w)
            index[w] = None if not ids or UNK_ID in ids else len(counts)
            if index[w] is not None:
                pieces.extend(ids)
                owner.extend([index[w]] * len(ids))
                counts.append(len(ids))
        return index[w]

    kept = [(i, j, score) for a, b, score in pairs if (i := word(a)) is not None and (j := word(b)) is not None]
    return CoveredPairs(
        torch.tensor(pieces, dtype=torch.long),
        torch.tensor(owner, dtype=torch.long),
        torch.tensor(counts, dtype=torch.float32),
        torch.tensor([i for i, _, _ in kept], dtype=torch.long),
        torch.tensor([j for _, j, _ in kept], dtype=torch.long),
        [score for _, _, score in kept],
        len(pairs),
    )


def correlation(matrix: torch.Tensor, covered: CoveredPairs) -> dict:
    """Spearman ρ of the cosine of the two words' vectors (the mean of their pieces' rows) with the ratings."""
    n = len(covered.human)
    rho = None
    if n > 2:
        w = matrix.float()
        sums = torch.zeros(len(covered.counts), w.size(1)).index_add_(0, covered.owner, w[covered.pieces])
        vectors = sums / covered.counts[:, None]
        model = torch.cosine_similarity(vectors[covered.a], vectors[covered.b], dim=1)
        rho = spearman(model, covered.human)
    return {
        "spearman": rho,
        "covered": n,
        "pairs": covered.total,
        "coverage": n / covered.total if covered.total else 0.0,
    }


def similarity_correlation(matrix, sp, pairs: list[tuple[str, str, float]]) -> dict:
    return correlation(matrix, covered_pairs(sp, pairs))


def plural_probe(matrix: torch.Tensor, tokens: list[str], pairs: list[tuple[str, str]]) -> dict:
    """The mean (plural − singular) offset over pairs whose words are single tokens, how consistent the
    offsets are (mean cosine with the mean offset), and leave-one-out analogy accuracy: is the
    plural the nearest token to singular + offset (the singular itself excluded)?"""
    index = {t: i for i, t in enumerate(tokens)}
    found = [(index["▁" + s], index["▁" + p]) for s, p in pairs if "▁" + s in index and "▁" + p in index]
    if len(found) < 2:
        return {"pairs": len(found), "offset_consistency": None, "analogy_accuracy": None}
    w = matrix.float()
    sg, pl = torch.tensor([a for a, _ in found]), torch.tensor([b for _, b in found])
    offsets = w[pl] - w[sg]
    total = offsets.sum(0)
    consistency = torch.cosine_similarity(offsets, total[None].expand_as(offsets), dim=1).mean()
    unit = normalize_rows(w)
    hits = 0
    for n in range(len(found)):
        offset = (total - offsets[n]) / (len(found) - 1)  # leave this pair out
        query = normalize_rows((w[sg[n]] + offset)[None])[0]
        scores = unit @ query
        scores[sg[n]] = float("-inf")
        hits += int(scores.argmax() == pl[n])
    return {"pairs": len(found), "offset_consistency": float(consistency), "analogy_accuracy": hits / len(found)}


NULL_DRAWS = 20
"""Random matrices drawn for the null of the intrinsic scores: its mean and its spread from one draw to the next."""


def random_null(shape: tuple[int, int], sp, word_pairs: dict[str, list], seed: int, draws: int = NULL_DRAWS) -> dict:
    """What a matrix that learned nothing scores: Spearman ρ on each word-pair set of ``draws`` random Gaussian
    matrices of ``shape`` (words split by the same SentencePiece model), as ``{key: mean, key_sd: standard
    deviation of one draw}``."""
    g = torch.Generator().manual_seed(seed)
    covered = {key: covered_pairs(sp, pairs) for key, pairs in word_pairs.items()}  # words split once
    rhos: dict[str, list[float]] = {key: [] for key in word_pairs}
    for _ in range(draws):
        w = torch.randn(shape, generator=g)
        for key, pairs in covered.items():
            rho = correlation(w, pairs)["spearman"]
            if rho is not None:
                rhos[key].append(rho)
    out: dict = {}
    for key, values in rhos.items():
        out[key] = sum(values) / len(values) if values else None
        out[f"{key}_sd"] = float(torch.tensor(values).std()) if len(values) > 1 else None
    return out


def null_seed(run_seed, name: str) -> int:
    """The random null's seed for one matrix of one run: different matrices and runs of different seeds
    draw different nulls; the same run analysed again draws the same."""
    return zlib.crc32(f"{run_seed}/{name}".encode())


def evaluate(dump, english_side: list[str]) -> dict | None:
    """Intrinsic scores of the matrices whose rows are English tokens, each with ``random``: the same scores
    of a random matrix of its shape (its null); None without gensim."""
    data = gensim_test_data()
    if data is None or not dump.spm_models:
        return None
    word_pairs = {key: read_word_pairs(data / f) for key, f in DATASETS.items()}
    plural = read_plural_pairs(data / "questions-words.txt")
    out = {}
    for name, w in dump.matrices.items():
        side = dump.side(name)
        if side not in english_side:
            continue
        sp = spm.SentencePieceProcessor(model_proto=dump.spm_models[side])
        out[name] = {key: similarity_correlation(w, sp, pairs) for key, pairs in word_pairs.items()}
        out[name]["plural"] = plural_probe(w, dump.tokens(name), plural)
        out[name]["random"] = random_null(tuple(w.shape), sp, word_pairs, null_seed(dump.meta.get("seed"), name))
    return out
