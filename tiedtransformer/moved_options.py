"""Options that moved, and the check that names an old one with its new key (instead of jsonargparse's
"unrecognized arguments")."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from tiedtransformer.errors import ConfigError


@cache
def moved_keys() -> dict[str, str]:
    """Old key -> new key. Built when first asked (the network's config imports torch), which is only when a
    given key could have moved: a plain command's ``--help`` stays quick."""
    from tiedtransformer.model.network import TransformerConfig
    from tiedtransformer.training.options import OptimConfig

    net = {f"model.{k}": f"model.net.{k}" for k in TransformerConfig.__dataclass_fields__}
    optim = {f"model.{k}": f"model.optim.{k}" for k in OptimConfig.__dataclass_fields__}
    return {**net, **optim, **_MOVED}  # the later tables win, as when they were one dict


# Keys that moved when the module began to take config dataclasses: old `model.X` -> new key (and moved_keys()).
_MOVED: dict[str, str] = {
    "model.decode": "model.decoding.search",
    **{f"similarity.{k}": f"similarity.analysis.{k}" for k in ("top_k", "knn_k", "min_count")},
    # tiedtransformer analyze / sweep, before their options came from typed functions
    **{k: f"analysis.{k.replace('-', '_')}" for k in ("top-k", "knn-k", "min-count")},
    "dry-run": "dry_run",
    **{f"model.{k}": f"model.decoding.{k}" for k in ("beam_size", "length_penalty", "max_len_a", "max_len_b")},
}


def check_moved_keys(args: list[str]) -> None:
    """An option that moved (``--model.tying`` is ``--model.net.tying``), on the command line or in a
    ``-c`` config file, is named with its new key instead of failing as an unknown option."""
    import yaml

    given = [a[2:].split("=")[0] for a in args if a.startswith("--")]
    for i, a in enumerate(args):
        if a in ("-c", "--config") and i + 1 < len(args) or a.startswith("--config="):
            path = a.split("=", 1)[1] if a.startswith("--config=") else args[i + 1]
            try:
                doc = yaml.safe_load(Path(path).read_text()) or {}
            except (OSError, yaml.YAMLError):
                continue  # LightningCLI reports a file it cannot read
            if isinstance(doc, dict):  # anything else: LightningCLI says what is wrong with the file
                given += [f"{section}.{key}" for section, v in doc.items() if isinstance(v, dict) for key in v]
    for key in given:
        if key in _MOVED or (key.startswith("model.") and key in moved_keys()):
            new = moved_keys()[key]
            *groups, leaf = new.split(".")
            nested = "".join(f"{g}: {{" for g in groups) + f"{leaf}: ..." + "}" * len(groups)
            where = f", or in a config file {nested}" if len(groups) > 1 else ""
            if "." not in new:  # a command's own option (a flag such as --dry_run takes no value)
                raise ConfigError(f"option --{key} is now --{new}")
            raise ConfigError(f"option --{key} is now --{new} (e.g. --{new}=...{where})")
