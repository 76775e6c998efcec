"""W&B sweep configs run without a W&B server: expand them as the agent would and run each command.

``tiedtransformer sweep SWEEP.yaml --local [--dry_run]``: grid sweeps expand to every combination,
random and bayes sweeps to ``run_cap`` random samples (bayes needs the server's model; locally it is
sampled at random, and says so). Each run is a subprocess with exactly the arguments the W&B agent
would pass (``--key=value``), in sequence, with a progress line per run; a failed run does not stop
the sweep, and failures are listed at the end. Finished runs (a ``summary.json`` with status
``finished`` in their run directory) are skipped when the sweep is run again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import random
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tiedtransformer.errors import ConfigError
from tiedtransformer.run.files import RunDir
from tiedtransformer.run.plan import RUN_NAME_ENV, SWEEP_SEED, RunOptions


def load_sweep(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"sweep file {path} does not exist")
    try:
        sweep = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    for key in ("method", "parameters", "command"):
        if key not in (sweep or {}):
            raise ConfigError(f"{path}: a W&B sweep config needs '{key}'")
    if sweep["method"] not in ("grid", "random", "bayes"):
        raise ConfigError(f"{path}: method must be grid, random or bayes, not {sweep['method']!r}")
    metric = sweep.get("metric")
    if metric is not None and (
        not isinstance(metric, dict)
        or "name" not in metric
        or metric.get("goal", "minimize") not in ("minimize", "maximize")
    ):
        raise ConfigError(f"{path}: metric needs a name and a goal of minimize or maximize")
    for name, spec in sweep["parameters"].items():
        ok = isinstance(spec, dict) and ("value" in spec or "values" in spec or {"min", "max"} <= set(spec))
        if not ok:
            raise ConfigError(f"{path}: parameter {name} needs value, values, or min and max")
    if not any("${args" in str(part) for part in sweep["command"]):
        raise ConfigError(f"{path}: the command must pass the parameters, with ${{args}}")
    return sweep


def _sample(spec: dict, rng: random.Random):
    if "value" in spec:
        return spec["value"]
    if "values" in spec:
        return rng.choice(spec["values"])
    dist = spec.get("distribution", "uniform" if isinstance(spec.get("min"), float) else "int_uniform")
    lo, hi = spec["min"], spec["max"]
    if dist == "uniform":
        return rng.uniform(lo, hi)
    if dist == "int_uniform":
        return rng.randint(lo, hi)
    if dist == "log_uniform_values":
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    if dist == "log_uniform":  # bounds are natural logs
        return math.exp(rng.uniform(lo, hi))
    if dist == "q_uniform":
        q = spec.get("q", 1.0)
        return round(rng.uniform(lo, hi) / q) * q
    raise ConfigError(f"distribution {dist!r} is not supported by local sweeps")


def expand(sweep: dict, seed: int = SWEEP_SEED) -> list[dict]:
    """The parameter sets of a sweep, in the agent's order for grids."""
    params = sweep["parameters"]
    if sweep["method"] == "grid":
        for name, spec in params.items():
            if "value" not in spec and "values" not in spec:
                raise ConfigError(
                    f"grid sweeps need 'values' or 'value' for every parameter; {name} has {sorted(spec)}"
                )
        names = list(params)
        choices = [params[n]["values"] if "values" in params[n] else [params[n]["value"]] for n in names]
        return [dict(zip(names, combo)) for combo in itertools.product(*choices)]
    if "run_cap" not in sweep:
        raise ConfigError(f"a local {sweep['method']} sweep needs run_cap (how many runs to sample)")
    rng = random.Random(seed)
    return [{n: _sample(spec, rng) for n, spec in params.items()} for _ in range(sweep["run_cap"])]


def _arg_value(v) -> str:
    return str(v)  # the agent writes Python's str(): True, 0.001, en-de


def command(sweep: dict, params: dict) -> list[str]:
    """The argv the W&B agent runs for one parameter set (its macros ${env}, ${interpreter},
    ${program}, ${args}, ${args_no_hyphens}, ${args_json})."""
    args = [f"--{k}={_arg_value(v)}" for k, v in params.items()]
    out: list[str] = []
    for part in sweep["command"]:
        if part == "${env}":
            out.append("/usr/bin/env")
        elif part == "${interpreter}":
            out.append(sys.executable)
        elif part == "${program}":
            out.append(sweep.get("program", ""))
        elif part == "${args}":
            out.extend(args)
        elif part == "${args_no_hyphens}":
            out.extend(a[2:] for a in args)
        elif part == "${args_json}":
            out.append(json.dumps(params))
        else:
            out.append(str(part))
    return out


def run_name(sweep_name: str, params: dict) -> str:
    digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{sweep_name}-{digest}"


def finished(root: Path, name: str) -> bool:
    return RunDir(root / name).finished()


def run_local(path: str, dry_run: bool = False, root: str = RunOptions.root, seed: int = SWEEP_SEED, out=None) -> int:
    """Run (or print) every run of the sweep; returns the number of failed runs."""
    out = out or sys.stdout
    sweep = load_sweep(path)
    sweep_name = sweep.get("name") or Path(path).stem
    runs = expand(sweep, seed)
    if sweep["method"] == "bayes":
        print(f"note: bayes needs the W&B server's model; locally its {len(runs)} runs are sampled at random", file=out)
    failures, n = [], len(runs)
    for i, params in enumerate(runs, 1):
        # the runs' directories go where finished ones are looked for (the last --run.root wins)
        argv, name = [*command(sweep, params), f"--run.root={root}"], run_name(sweep_name, params)
        label = " ".join(f"{k}={v}" for k, v in params.items())
        if dry_run:
            print(f"{shlex.join(argv)}    # run {name}", file=out)
            continue
        if finished(Path(root), name):
            print(f"[{i}/{n}] {label}: already finished ({Path(root) / name}), skipped", file=out, flush=True)
            continue
        print(f"[{i}/{n}] {label}: running as {name} ...", file=out, flush=True)
        env = {**os.environ, RUN_NAME_ENV: name, "WANDB_RUN_GROUP": os.environ.get("WANDB_RUN_GROUP", sweep_name)}
        start = time.perf_counter()
        rc = subprocess.run(argv, env=env).returncode
        took = time.perf_counter() - start
        status = "ok" if rc == 0 else f"FAILED (exit {rc})"
        print(f"[{i}/{n}] {label}: {status} in {took:.0f} s", file=out, flush=True)
        if rc != 0:
            failures.append((label, rc))
    if failures:
        print(f"{len(failures)} of {n} runs failed:", file=out)
        for label, rc in failures:
            print(f"  {label} (exit {rc})", file=out)
    elif not dry_run:
        print(f"all {n} runs finished", file=out)
    return len(failures)
