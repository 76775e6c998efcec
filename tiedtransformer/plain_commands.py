"""The commands besides LightningCLI's: typed functions whose signatures and docstrings are their
command lines (jsonargparse reads them; ``tiedtransformer COMMAND --help`` lists them)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from tiedtransformer.analysis.options import AnalysisOptions
from tiedtransformer.errors import ConfigError
from tiedtransformer.run.files import CrossDir, DumpDir, RunDir
from tiedtransformer.run.plan import SWEEP_SEED, RunOptions
from tiedtransformer.search_defaults import BEAM_SIZE, LENGTH_PENALTY, TRANSLATE_MAX_LEN


def analyze(
    paths: list[str],
    analysis: AnalysisOptions = AnalysisOptions(),
    init: str | None = None,
    pairs: int = 100_000,
    out: str | None = None,
) -> None:
    """The similarity analysis of a dump, a checkpoint or every snapshot of a run (with, for a run, its
    matrices' geometry over training in trajectory.json); or, given two, their matrices compared by token text.

    Args:
        paths: An embedding dump directory (from EmbeddingSnapshot), a fit checkpoint (.ckpt) or a run
            directory (every snapshot in it); or two dumps or checkpoints (A B) to compare.
        analysis: What the analysis computes.
        init: The matrices at initialisation, the null of every statistic (default: the step-0
            snapshot of the run the dump or checkpoint lies in, if there is one).
        pairs: Two inputs: token pairs sampled for the Spearman correlation of their cosines.
        out: Output folder (default: the dump itself, <checkpoint>-analysis, or A's with /vs-<B>).
    """
    from tiedtransformer.analysis import schema
    from tiedtransformer.analysis.dumps import read_any
    from tiedtransformer.analysis.numbers import fmt
    from tiedtransformer.analysis.report import analyze_to_dir, init_snapshot

    if len(paths) > 2:
        raise ConfigError(f"analyze takes one input, or two to compare; got {len(paths)}")
    if len(paths) == 2:
        return _analyze_two(paths, analysis, pairs, out)
    path = paths[0]
    targets = [Path(path)]
    if Path(path).is_dir() and not DumpDir(path).is_dump():
        targets = RunDir(path).dumps()
        if not targets:
            raise ConfigError(f"{path} is neither an embedding dump nor a run directory with embeddings/step-*")
        if out:
            raise ConfigError("--out is for one dump or checkpoint; a run's snapshots are analysed in place")
    init_path = init or init_snapshot(targets[-1])
    init_dump = read_any(init_path) if init_path else None
    for target in targets:
        dump = read_any(target)
        where = out or (target if target.is_dir() else target.with_name(target.stem + "-analysis"))
        base = None if init_path and Path(init_path).resolve() == target.resolve() else init_dump
        report, _ = analyze_to_dir(dump, where, analysis, lambda name: print(f"analysed {name}", flush=True), base)
        print(f"{target}: step {dump.meta.get('step')}" + (f", null at init: {init_path}" if base else ""))
        for name, m in report.matrices.items():
            print(f"  {name}" + (f" (identical to {m.identical_to})" if m.identical_to else ""))
            for stat in schema.STATISTICS:
                nulls = {k: m.stat(stat.key, k) for k in m.nulls}
                against = ", ".join(f"{k} {fmt(v)}" for k, v in nulls.items() if v is not None)
                print(
                    f"    {stat.words(analysis.top_k):32s} {fmt(m.stat(stat.key))}"
                    + (f" (null: {against})" if against else "")
                )
        print(f"  report: {DumpDir(where).report}")
    if targets != [Path(path)] and targets[0] == RunDir(path).snapshot(0):  # a run, with its step-0 null
        from tiedtransformer.analysis.trajectory import run_trajectory

        run_trajectory(path, analysis.min_count, analysis.null_seed)
        print(f"over training (every snapshot against its nulls): {RunDir(path).trajectory}")


def _analyze_two(paths: list[str], analysis: AnalysisOptions, pairs: int, out: str | None) -> None:
    from tiedtransformer.analysis.cross import cross_to_dir
    from tiedtransformer.analysis.dumps import read_any

    a, b = (read_any(p) for p in paths)
    labels = tuple(_label(p, d.meta) for p, d in zip(paths, (a, b)))
    if out is None:
        first = Path(paths[0])
        base = first if first.is_dir() else first.with_name(first.stem + "-analysis")
        out = str(base / f"vs-{_slug(paths[1])}")
    report = cross_to_dir(a, b, labels, out, analysis, pairs)
    for measure in ("jaccard_top_pairs", "jaccard_knn", "spearman"):
        print(measure)
        for x, row in report[measure].items():
            print(f"  A {x:10s} " + "  ".join(f"{y} {'–' if v is None else f'{v:.3f}'}" for y, v in row.items()))
    print(f"report: {CrossDir(out).report}")


def _label(path: str, meta: dict) -> str:
    return f"{path} (tying {meta.get('tying')}, {meta.get('direction')}, step {meta.get('step')})"


def _slug(path: str) -> str:

    p = Path(path).resolve()
    run = RunDir.containing(p)
    return "-".join(x for x in (run.name if run else None, p.stem if p.is_file() else p.name) if x)


def average(paths: list[str], last: int = 5, out: str | None = None) -> None:
    """Average the weights of a run's last N step or epoch checkpoints (or of the checkpoint files
    given) into one checkpoint.

    Args:
        paths: A run directory, or the checkpoint files to average.
        last: With a run directory: how many of its newest checkpoints.
        out: The averaged checkpoint (default: RUN_DIR/checkpoints/averaged-lastN.ckpt).
    """
    from tiedtransformer.training.averaging import average_checkpoints, last_checkpoints

    if last < 1:
        raise ConfigError(f"--last {last}: average at least one checkpoint")
    if len(paths) == 1 and Path(paths[0]).is_dir():
        files = last_checkpoints(paths[0], last)
        out = out or str(RunDir(paths[0]).averaged_last(last))
    else:
        files = [Path(x) for x in paths]
        if not out:
            raise ConfigError("averaging checkpoint files needs --out FILE")
    written = average_checkpoints(files, out)
    print(f"averaged {len(files)} checkpoints ({', '.join(p.name for p in files)}) into {written}")


def sweep(
    sweep: str, local: bool = False, dry_run: bool = False, root: str = RunOptions.root, seed: int = SWEEP_SEED
) -> None:
    """Run a W&B sweep config without a W&B server.

    Args:
        sweep: A W&B sweep config (sweeps/*.yaml).
        local: Run here, one run after another (no W&B server).
        dry_run: Print the commands instead of running them.
        root: Where the runs' directories go (each run gets ``--run.root=ROOT``); finished ones are skipped.
        seed: Seed of random/bayes sampling.
    """
    from tiedtransformer.training.sweep import run_local

    if not local:
        raise ConfigError(
            f"with a W&B server: `wandb sweep {sweep}` then `wandb agent <sweep id>`; without one, add --local"
        )
    if run_local(sweep, dry_run=dry_run, root=root, seed=seed):
        sys.exit(1)


def compare(runs: list[str], out: str = "report.html") -> None:
    """The runs side by side, offline: one HTML page, with .md and .csv tables beside it.

    Args:
        runs: Run directories (each with summary.json).
        out: The HTML page.
    """
    from tiedtransformer.analysis.compare import write_comparison

    for kind, path in write_comparison(runs, out).items():
        print(f"{kind}: {path}")


def export(
    checkpoint: str,
    to: Literal["hf", "ctranslate2"] = "hf",
    out: str | None = None,
    quantization: str | None = None,
) -> None:
    """A trained model out of the framework, with a model card (README.md): a Hugging Face directory
    (``AutoModelForSeq2SeqLM`` / ``AutoTokenizer``, then ``generate``) or a CTranslate2 model.
    Needs the ``export`` extra (pip install 'tiedtransformer[export]').

    Args:
        checkpoint: A checkpoint of ``tiedtransformer fit`` (.ckpt), or a run directory (its averaged
            checkpoint if it has one, else its last).
        to: hf (transformers: Marian for post-norm, Pegasus for pre-norm untied or three-way tied; what it cannot
            represent exactly is refused) or ctranslate2 (every tying mode, pre- and post-norm).
        out: The directory to write (default: <checkpoint>-<to>).
        quantization: ctranslate2 only: int8, int8_float32, int8_float16, int8_bfloat16, int16, float16,
            bfloat16 or float32 (default: the weights' own type).
    """
    import importlib.util

    from tiedtransformer.export.card import model_card
    from tiedtransformer.export.source import load_exportable

    needed = "transformers" if to == "hf" else "ctranslate2"
    if importlib.util.find_spec(needed) is None:
        raise ConfigError(f"--to {to} needs {needed}: pip install 'tiedtransformer[export]'")
    if quantization is not None and to != "ctranslate2":
        raise ConfigError("--quantization is for --to ctranslate2")
    src = load_exportable(checkpoint)
    target = Path(out) if out else src.checkpoint.with_name(f"{src.checkpoint.stem}-{to}")
    if to == "hf":
        from tiedtransformer.export.hf import export_hf

        export_hf(src, target)
    else:
        from tiedtransformer.export.ct2 import export_ct2

        export_ct2(src, target, quantization)
    (target / "README.md").write_text(model_card(src, to), encoding="utf-8")
    print(f"exported {src.checkpoint} (tying {src.net.cfg.tying}) to {target}")


def translate(
    checkpoint: str,
    input: str,  # noqa: A002 - the command line's INPUT
    output: str | None = None,
    engine: Literal["ours", "ctranslate2"] = "ours",
    compute_type: str = "default",
    beam_size: int = BEAM_SIZE,
    length_penalty: float = LENGTH_PENALTY,
    max_len: int = TRANSLATE_MAX_LEN,
    skip_invalid_utf8: bool = False,
) -> None:
    """Translate a file, one sentence per line, without a Trainer: by our search or by CTranslate2 (exported
    once, cached). One output line per input line, in order; blank lines stay blank; over-long lines are
    cut and named; a line that is not UTF-8 is an error naming it.

    Args:
        checkpoint: A checkpoint of ``tiedtransformer fit`` (.ckpt), or a run directory (its averaged
            checkpoint if it has one, else its last).
        input: The file to translate.
        output: Where the translations go (default: <input>.<target language>).
        engine: ours (this project's beam search) or ctranslate2 (needs the export extra).
        compute_type: ctranslate2 only: default, int8, int8_float32, float32, ... (CTranslate2's names).
        beam_size: Beams (1: greedy).
        length_penalty: α of the length penalty (ours: GNMT's ((5+n)/6)^α; CTranslate2: n^α).
        max_len: Source tokens kept per line (EOS included); longer lines are cut, with a warning.
        skip_invalid_utf8: Translate a line that is not valid UTF-8 as an empty line instead of stopping.
    """
    import importlib.util

    from tqdm import tqdm

    from tiedtransformer.export.source import load_exportable
    from tiedtransformer.export.translate import Decoding, translate_file

    if engine == "ctranslate2" and importlib.util.find_spec("ctranslate2") is None:
        raise ConfigError("--engine ctranslate2 needs ctranslate2: pip install 'tiedtransformer[export]'")
    if compute_type != "default" and engine != "ctranslate2":
        raise ConfigError("--compute_type is for --engine ctranslate2")
    if beam_size < 1 or max_len < 2:
        raise ConfigError(f"--beam_size {beam_size} / --max_len {max_len}: at least 1 beam and 2 tokens")
    src = load_exportable(checkpoint)
    target = Path(output or f"{input}.{src.langs[1]}")
    done = translate_file(
        src,
        input,
        target,
        engine,
        compute_type,
        Decoding(beam_size=beam_size, length_penalty=length_penalty, max_len=max_len),
        skip_invalid_utf8,
        lambda xs: tqdm(xs, desc=f"translating ({engine})", unit="batch", file=sys.stderr, leave=False),
    )
    print(f"translations of {done['lines']} lines written to {target} ({engine})")


def run_function(fn: Callable, args: list[str]) -> None:
    """Parse ``args`` with ``fn``'s signature and docstring (jsonargparse) and call it."""
    import inspect

    from jsonargparse import ActionYesNo, ArgumentParser, set_parsing_settings

    set_parsing_settings(docstring_parse_attribute_docstrings=True)  # dataclass field docstrings as help
    doc = (fn.__doc__ or "").split("\n\n")[0]
    parser = ArgumentParser(prog=f"tiedtransformer {fn.__name__}", description=doc, exit_on_error=True)
    variadic = variadic_argument(fn)
    if variadic:
        parser.add_argument(variadic, nargs="+", help=_arg_help(fn, variadic))
    # A bool option is a flag (--local, --no_local), not --local=true.
    flags = [p for p in inspect.signature(fn).parameters.values() if p.default is False or p.default is True]
    for p in flags:
        parser.add_argument(f"--{p.name}", action=ActionYesNo, default=p.default, help=_arg_help(fn, p.name))
    skip = {variadic, *(p.name for p in flags)} - {None}
    parser.add_function_arguments(fn, skip=skip, as_positional=True, as_group=False)
    init = parser.instantiate(parser.parse_args(args))
    fn(**{name: init[name] for name in fn.__code__.co_varnames[: fn.__code__.co_argcount]})


def variadic_argument(fn: Callable) -> str | None:
    """The positional argument that takes one or more values: the first parameter without a default typed
    ``list[str]`` (given as ``a b c``, where jsonargparse's own would want a JSON list)."""
    import inspect

    for p in inspect.signature(fn).parameters.values():
        if p.default is inspect.Parameter.empty and p.annotation in ("list[str]", list[str]):
            return p.name
    return None


def _arg_help(fn: Callable, name: str) -> str:
    doc = fn.__doc__ or ""
    marker = f"{name}: "
    return doc[doc.index(marker) + len(marker) :].split("\n")[0] if marker in doc else name
