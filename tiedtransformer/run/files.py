"""Every file name of a run directory (:class:`RunDir`), of an embedding dump and its analysis
(:class:`DumpDir`), and of the comparison of two dumps (:class:`CrossDir`). The rest of the code asks
these classes for paths; no other module spells one of these names (``tests/test_package_structure.py``).

A run directory holds::

    config.yaml            the resolved config (``-c`` it with ``--ckpt_path last`` to resume)
    checkpoints/           last.ckpt, the best (epochNN-stepN.ckpt), last-interrupted.ckpt;
                           kept/ and averaged.ckpt (checkpoint averaging), averaged-lastN.ckpt (``average``)
    metrics.csv            resume-N/metrics.csv for the N-th resumption
    embeddings/step-N/     embedding dumps and their similarity reports (a :class:`DumpDir` each)
    final-<stage>.<lang>   the final evaluation's translations (val, test); final-test.ref.<lang> its references
    summary.json           what the run did (written when fit ends or fails)
    trajectory.json        every snapshot's geometry against its nulls (tiedtransformer analyze RUN)
    similarity-final.json  only in a kept copy (docs/keep_runs.py): the last snapshot's report, trimmed
    similarity-step0.json  only in a kept copy: the step-0 snapshot's report, trimmed
    wandb/                 W&B's files

An embedding dump holds::

    embeddings.safetensors one tensor per distinct token matrix; tied ones are aliases in its metadata
    vocab.txt              target tokens, one per row; vocab.src.txt the source tokens if they differ
    meta.json              tying, direction, step, epoch, the run's seed, which matrices are tied
    counts.json            training frequency of each token (optional)
    spm.model              the SentencePiece model (spm.src.model for the source side if it differs)
    similarity.json        the analysis (``tiedtransformer analyze``); report.md its Markdown, knn/NAME.tsv
                           each matrix's neighbours, NAME.png its figures
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tiedtransformer.atomic import atomic_write_json, is_temporary
from tiedtransformer.errors import ConfigError
from tiedtransformer.run.summary import FitSummary


class RunDir:
    """Every path of one run directory, and its lifecycle: :meth:`create`, :meth:`metrics_version`
    (resume), :meth:`write_summary` (finish). Cheap: callbacks make one from ``trainer.default_root_dir``."""

    CONFIG = "config.yaml"
    SUMMARY = "summary.json"
    METRICS = "metrics.csv"
    TRAJECTORY = "trajectory.json"
    FINAL_SIMILARITY = "similarity-final.json"
    INIT_SIMILARITY = "similarity-step0.json"
    CHECKPOINTS = "checkpoints"
    EMBEDDINGS = "embeddings"
    LAST = "last"  # Lightning's ModelCheckpoint saves last.ckpt; --ckpt_path last takes the newest last*.ckpt
    INTERRUPTED = "last-interrupted.ckpt"
    AVERAGED = "averaged.ckpt"
    BEST_PATTERN = "epoch{epoch:02d}-step{step}"  # ModelCheckpoint's filename option (it adds .ckpt)
    RESUME = "resume-"
    SNAPSHOT = "step-"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def of(cls, trainer) -> RunDir:
        return cls(trainer.default_root_dir)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def last(self) -> Path:
        """The checkpoint Lightning writes at every save (``save_last``)."""
        return self.checkpoints / f"{self.LAST}.ckpt"

    @property
    def interrupted(self) -> Path:
        """What the fault-tolerance callback writes on SIGTERM, SIGINT or an exception."""
        return self.checkpoints / self.INTERRUPTED

    @property
    def kept(self) -> Path:
        """Checkpoints kept for averaging."""
        return self.checkpoints / "kept"

    @staticmethod
    def kept_name(epoch: int, step: int) -> str:
        """A checkpoint kept for averaging (its step is read back from the name)."""
        return f"epoch{epoch:02d}-step{step:08d}.ckpt"

    @property
    def averaged(self) -> Path:
        return self.checkpoints / self.AVERAGED

    def averaged_last(self, n: int) -> Path:
        """What ``tiedtransformer average RUN --last N`` writes."""
        return self.checkpoints / f"averaged-last{n}.ckpt"

    @property
    def summary(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def embeddings(self) -> Path:
        return self.path / self.EMBEDDINGS

    @property
    def trajectory(self) -> Path:
        """The geometry of every snapshot against its nulls (``tiedtransformer analyze RUN``)."""
        return self.path / self.TRAJECTORY

    @property
    def final_similarity(self) -> Path:
        """The last snapshot's similarity report, trimmed to what the tables use (``docs/keep_runs.py``): what a
        kept copy of the run has in place of its dumps."""
        return self.path / self.FINAL_SIMILARITY

    @property
    def init_similarity(self) -> Path:
        """The step-0 snapshot's similarity report, trimmed (``docs/keep_runs.py``): the initialisation null of
        a kept copy's statistics that only a report has (SimLex-999 of the matrices at step 0)."""
        return self.path / self.INIT_SIMILARITY

    def snapshot(self, step: int) -> Path:
        """The embedding dump taken after optimizer step ``step``."""
        return self.embeddings / f"{self.SNAPSHOT}{step:08d}"

    def dumps(self) -> list[Path]:
        """Every embedding dump of the run, analysed or not, oldest first."""
        return sorted(p.parent for p in self.embeddings.glob(f"{self.SNAPSHOT}*/{DumpDir.EMBEDDINGS}"))

    def snapshots(self) -> list[Path]:
        """The embedding dumps that have a similarity report, oldest first."""
        return sorted(p.parent for p in self.embeddings.glob(f"{self.SNAPSHOT}*/{DumpDir.SIMILARITY}"))

    @classmethod
    def containing(cls, path: str | Path) -> RunDir | None:
        """The run directory that a dump (``embeddings/step-N``) or checkpoint (``checkpoints/X.ckpt``,
        ``checkpoints/kept/X.ckpt``) lies in, if it lies in one."""
        p = Path(path).resolve()
        for parent in p.parents:
            if (parent / cls.SUMMARY).is_file() or (parent / cls.CONFIG).is_file():
                return cls(parent) if parent in (p.parent.parent, p.parent.parent.parent) else None
        return None

    def final_translations(self, lang: str, stage: str = "val") -> Path:
        return self.path / f"final-{stage}.{lang}"

    def final_references(self, lang: str, stage: str = "test") -> Path:
        return self.path / f"final-{stage}.ref.{lang}"

    def metrics_files(self) -> list[Path]:
        """metrics.csv and those of the resumptions (resume-1/, resume-2/, ...), in order."""
        resumed = sorted(
            self.path.glob(f"{self.RESUME}*/{self.METRICS}"), key=lambda p: int(p.parent.name[len(self.RESUME) :])
        )
        return [p for p in [self.metrics, *resumed] if p.is_file()]

    def metrics_version(self, resuming: bool) -> str:
        """CSVLogger's version folder: "" (metrics.csv in the run directory) for a new run; a resumed
        run logs into resume-N/ (CSVLogger would delete an existing metrics.csv)."""
        return f"{self.RESUME}{1 + len(list(self.path.glob(self.RESUME + '*')))}" if resuming else ""

    def read_summary(self) -> FitSummary | None:
        """summary.json, or None where there is none or it is not JSON."""
        try:
            return FitSummary.from_json(json.loads(self.summary.read_text()))
        except (OSError, ValueError):
            return None

    def finished(self) -> bool:
        summary = self.read_summary()
        return summary is not None and summary.finished

    def write_summary(self, summary: FitSummary) -> Path:
        atomic_write_json(self.summary, summary.to_json())
        return self.summary

    def is_run(self) -> bool:
        """Whether this looks like a directory ``tiedtransformer fit`` made."""
        return self.checkpoints.is_dir() and (self.summary.exists() or self.config.exists())

    def create(self) -> RunDir:
        """Create the directory (a suffix -2, -3, ... keeps it unique) and prove it takes writes, so that
        a read-only or full disk fails now rather than at the first checkpoint."""
        base, path, n = self.path.expanduser(), self.path.expanduser(), 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir(parents=True)
            probe = path / ".write-test"
            with open(probe, "wb") as f:
                f.write(b"\0" * (1 << 20))
                f.flush()
                os.fsync(f.fileno())
            probe.unlink()
        except OSError as e:
            raise ConfigError(
                f"cannot write the run directory {path}: {e.strerror or e}. Free disk space, fix permissions, "
                "or choose another folder with --run.root"
            ) from None
        return RunDir(path)

    def remove_if_empty(self) -> None:
        if self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()

    def remove_partial_writes(self) -> list[Path]:
        """Clear what a killed process left mid-write: the temporary files and folders of
        :func:`atomic_path` / :func:`atomic_dir` (``.NAME.xxxx`` beside NAME); a folder that was being
        replaced (``.NAME.old``) goes back to NAME if NAME is gone. Called when a run resumes; returns
        what it removed or restored."""
        touched = []
        for folder in (self.path, self.checkpoints, self.kept, self.embeddings):
            for p in sorted(folder.glob(".*")) if folder.is_dir() else ():
                if p.name.endswith(".old") and not (target := p.with_name(p.name[1:-4])).exists():
                    p.rename(target)
                elif p.name.endswith(".old") or is_temporary(p.name):
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
                else:
                    continue
                touched.append(p)
        return touched

    def last_checkpoint(self) -> Path | None:
        """The newest ``last*.ckpt`` in checkpoints/ (what ``--ckpt_path last`` resumes, by Lightning's
        rule: the file name starts with ``last``, newest by modification time), or None."""
        found = [p for p in self.checkpoints.glob(f"{self.LAST}*.ckpt") if p.is_file()]
        return max(found, key=lambda p: p.stat().st_mtime) if found else None

    def check_free_space(self, checkpoint_size: int, copies: int = 3) -> None:
        """Fail now, not at the first checkpoint an hour in, if the disk cannot hold ``copies``
        checkpoints (the best, last.ckpt, and one written on an interruption)."""
        needed, free = copies * checkpoint_size, shutil.disk_usage(self.path).free
        if free < needed:
            raise ConfigError(
                f"the disk of the run directory {self.path} has {free / 2**30:.2f} GiB free, but this run's "
                f"checkpoints need about {needed / 2**30:.2f} GiB ({copies} x {checkpoint_size / 2**30:.2f} GiB). "
                "Free disk space, or choose another folder with --run.root"
            )


USE_OWN_CONFIG = f"Use the checkpoint's own config (-c runs/X/{RunDir.CONFIG})."


class DumpDir:
    """Every file of one embedding dump (:mod:`tiedtransformer.analysis.dumps` writes and reads them) and
    of its analysis (:mod:`tiedtransformer.analysis.report`), which may lie in the dump or elsewhere."""

    EMBEDDINGS = "embeddings.safetensors"
    META = "meta.json"
    COUNTS = "counts.json"
    SIMILARITY = "similarity.json"
    REPORT = "report.md"
    _VOCAB = {"tgt": "vocab.txt", "src": "vocab.src.txt"}  # the source side's only where it differs
    _SPM = {"tgt": "spm.model", "src": "spm.src.model"}

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"DumpDir({str(self.path)!r})"

    def is_dump(self) -> bool:
        return self.embeddings.is_file()

    @property
    def embeddings(self) -> Path:
        return self.path / self.EMBEDDINGS

    @property
    def meta(self) -> Path:
        return self.path / self.META

    @property
    def counts(self) -> Path:
        return self.path / self.COUNTS

    def vocab(self, side: str) -> Path:
        """Token text by row: ``tgt`` always, ``src`` only where the source vocabulary differs."""
        return self.path / self._VOCAB[side]

    def spm(self, side: str) -> Path:
        """The SentencePiece model: ``tgt`` always (if any), ``src`` only where it differs."""
        return self.path / self._SPM[side]

    @property
    def similarity(self) -> Path:
        return self.path / self.SIMILARITY

    @property
    def report(self) -> Path:
        return self.path / self.REPORT

    @property
    def knn_dir(self) -> Path:
        return self.path / "knn"

    def knn(self, matrix: str) -> Path:
        """Each token of one matrix with its nearest neighbours."""
        return self.knn_dir / f"{matrix}.tsv"

    def figure(self, name: str) -> Path:
        return self.path / f"{name}.png"


class CrossDir:
    """The files of the comparison of two dumps (``tiedtransformer analyze A B``)."""

    JSON = "cross.json"
    REPORT = "cross.md"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def json(self) -> Path:
        return self.path / self.JSON

    @property
    def report(self) -> Path:
        return self.path / self.REPORT

    def figure(self, measure: str) -> Path:
        return self.path / f"cross_{measure}.png"


def file_names() -> set[str]:
    """Every file name above that is spelled out in full (what no other module may spell)."""
    names = {f"{RunDir.LAST}.ckpt"}
    for cls in (RunDir, DumpDir, CrossDir):
        for key, value in vars(cls).items():
            if key.isupper() and isinstance(value, str) and "." in value:
                names.add(value)
            elif key.startswith("_") and isinstance(value, dict):
                names.update(value.values())
    return names
