"""How a run is named for people: by what differs between the runs of an experiment (direction, tying
mode, seed), not by its directory's hash. One spelling for pages and tables (``en-de · three_way ·
seed 2``) and one for W&B run names (``en-de-three_way-s2``); the directory name stays the key that
finds the run again."""

from __future__ import annotations


def run_label(direction: str | None, tying: str | None, seed=None) -> str:
    """``en-de · three_way · seed 2`` (a part that is not known is left out)."""
    parts = [str(direction) if direction else None, str(tying) if tying else None]
    if _is_seed(seed):
        parts.append(f"seed {seed}")
    return " · ".join(p for p in parts if p) or "run"


def wandb_run_name(direction: str | None, tying: str | None, seed=None) -> str:
    """``en-de-three_way-s2``: the same label in the characters W&B run names and URLs keep."""
    parts = [str(direction) if direction else None, str(tying) if tying else None]
    if _is_seed(seed):
        parts.append(f"s{seed}")
    return "-".join(p for p in parts if p) or "run"


def _is_seed(seed) -> bool:
    return isinstance(seed, int) and not isinstance(seed, bool)


def distinct_labels(labels: dict[str, str], settings: dict[str, dict]) -> dict[str, str]:
    """``labels`` (run key -> label) made unique: where runs share a label, each gets the settings in
    which they differ (``settings``: run key -> flat {option: value}, e.g. its config), and where no
    setting differs, its key (the directory name)."""
    out = dict(labels)
    by_label: dict[str, list[str]] = {}
    for key, label in labels.items():
        by_label.setdefault(label, []).append(key)
    for label, keys in by_label.items():
        if len(keys) < 2:
            continue
        options = sorted({o for k in keys for o in settings.get(k, {})})
        differing = [o for o in options if len({repr(settings.get(k, {}).get(o)) for k in keys}) > 1]
        for k in keys:
            extra = [f"{o.rsplit('.', 1)[-1]}={settings.get(k, {}).get(o)}" for o in differing[:2]]
            out[k] = f"{label} · {', '.join(extra)}" if extra else f"{label} · {k}"
    if len(set(out.values())) < len(out):  # settings alike in their first two differences: the key decides
        seen: dict[str, int] = {}
        for v in out.values():
            seen[v] = seen.get(v, 0) + 1
        out = {k: (f"{v} · {k}" if seen[v] > 1 else v) for k, v in out.items()}
    return out


def flat(config: dict, prefix: str = "") -> dict:
    """A nested config as {"model.net.tying": value, ...}."""
    out = {}
    for k, v in (config or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= flat(v, key + ".")
        else:
            out[key] = v
    return out
