"""Small corpora the tests make themselves, in every format the project reads."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tiedtransformer.data.demo_corpus import demo_pairs


def demo_texts(n: int, split: str = "train") -> list[dict[str, str]]:
    return list(demo_pairs(split, n))


def write_parallel(prefix: Path, pairs) -> Path:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for lang in ("en", "de"):
        prefix.with_name(f"{prefix.name}.{lang}").write_text("".join(p[lang] + "\n" for p in pairs), encoding="utf-8")
    return prefix


def write_hub_shards(folder: Path, splits: dict[str, list], n_shards: int = 3, fmt: str = "parquet") -> Path:
    """A local dataset in the hub's schema: rows {"translation": {"de": ..., "en": ...}} in shards."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, pairs in splits.items():
        k = n_shards if split == "train" else 1
        for s in range(k):
            rows = [{"translation": {"de": p["de"], "en": p["en"]}} for p in pairs[s::k]]
            name = folder / f"{split}-{s:05d}-of-{k:05d}"
            if fmt == "parquet":
                pq.write_table(pa.Table.from_pylist(rows), f"{name}.parquet")
            else:
                Path(f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return folder


def write_hub_repo(folder: Path, config: str, splits: dict[str, list], n_shards: int = 3) -> Path:
    """A local copy of a hub dataset in the layout of ``wmt/wmt14``: parquet shards per configuration
    (``de-en/train-00000-of-00003.parquet`` ...) and a dataset card whose metadata names them, so that
    ``load_dataset(folder, config, split=..., streaming=True)`` reads it as it reads the hub's."""
    write_hub_shards(folder / config, splits, n_shards)
    card = ["---", "configs:", f"- config_name: {config}", "  data_files:"]
    for split in splits:
        card += [f"  - split: {split}", f"    path: {config}/{split}-*"]
    (folder / "README.md").write_text("\n".join([*card, "---", ""]), encoding="utf-8")
    return folder
