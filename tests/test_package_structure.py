"""What the package's layout promises, checked on its source: every file name of a run directory or
dump is spelled in :mod:`tiedtransformer.run.files` alone, and the analysis imports nothing from
training (so that it reads runs without Lightning's training stack)."""

import ast
import re
from pathlib import Path

import pytest

from tiedtransformer.run.files import file_names

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*(ROOT / "tiedtransformer").rglob("*.py"), *(ROOT / "callbacks").glob("*.py")])
OWNER = ROOT / "tiedtransformer" / "run" / "files.py"
# the same spelling for another artefact's file (not a run's or a dump's), with the reason
ELSEWHERE = {("tiedtransformer/data/vocab.py", "counts.json")}  # the vocabulary cache's own token counts
# the results page's prose names the files it reads (text of the page, not paths)
ELSEWHERE |= {("docs/make_results.py", n) for n in ("config.yaml", "summary.json", "trajectory.json")}
ELSEWHERE |= {("docs/make_results.py", n) for n in ("similarity-final.json", "similarity-step0.json")}
# scripts beside the package that read runs: they ask RunDir / DumpDir too
SCRIPTS = sorted([*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "docs").glob("*.py")])


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are docstrings (prose may name files)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    # attribute docstrings: a string expression right after an assignment in a class body
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        for a, b in zip(body[:-1], body[1:]) if isinstance(body, list) else ():
            if (
                isinstance(a, (ast.Assign, ast.AnnAssign))
                and isinstance(b, ast.Expr)
                and isinstance(b.value, ast.Constant)
            ):
                ids.add(id(b.value))
    return ids


def spelled_file_names(source: str, names: set[str]) -> set[str]:
    """The names of ``names`` that a string constant of ``source`` (not a docstring) spells."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    pattern = re.compile(
        r"(?<![\w.-])(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")(?![\w])"
    )
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            found |= set(pattern.findall(node.value))
    return found


def test_the_scan_finds_a_spelled_name_and_ignores_docstrings():
    names = {"summary.json", "last.ckpt"}
    source = '"""Writes summary.json."""\nX = "summary.json"\nY = f"{d}/last.ckpt"\nZ = "my-summary.json.bak"\n'
    assert spelled_file_names(source, names) == {"summary.json", "last.ckpt"}
    assert spelled_file_names('"""Writes summary.json."""\n', names) == set()


@pytest.mark.parametrize("path", [p for p in SOURCES + SCRIPTS if p != OWNER], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_file_name_of_a_run_or_dump_is_spelled_outside_run_files(path):
    rel = str(path.relative_to(ROOT))
    spelled = {n for n in spelled_file_names(path.read_text(), file_names()) if (rel, n) not in ELSEWHERE}
    assert not spelled, f"{rel} spells {sorted(spelled)}: ask RunDir / DumpDir / CrossDir for the path"


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def test_analysis_imports_nothing_from_training():
    for path in (ROOT / "tiedtransformer" / "analysis").glob("*.py"):
        bad = {m for m in _imports(path) if m.startswith("tiedtransformer.training")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_run_package_imports_neither_training_nor_analysis():
    for path in (ROOT / "tiedtransformer" / "run").glob("*.py"):
        bad = {m for m in _imports(path) if m.startswith(("tiedtransformer.training", "tiedtransformer.analysis"))}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_every_subpackage_is_installed():
    """A subpackage missing from pyproject's list works in an editable install and is absent from a wheel."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "tiedtransformer").rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"


def test_the_lightning_module_does_no_file_io_and_prints_nothing():
    """It computes and logs; callbacks write (FinalTranslations, RunSummary) and talk to the user."""
    source = (ROOT / "tiedtransformer" / "training" / "module.py").read_text()
    calls = {
        n.func.id if isinstance(n.func, ast.Name) else n.func.attr
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute))
    }
    assert not calls & {"open", "print", "write_text", "write_bytes", "atomic_write_text", "atomic_write_json"}
    assert not {m for m in _imports(ROOT / "tiedtransformer" / "training" / "module.py") if m.endswith(".atomic")}


# functions longer than LONGEST lines, each with the reason it stays whole
LONG_FUNCTIONS = {
    (
        "tiedtransformer/analysis/similarity.py",
        "analyze_matrix",
    ): "one pass over the tiles of a V x V product that shares reused buffers, the running top/bottom pairs, the "
    "k-NN lists and the histogram between its two loops; pieces would pass a dozen of them back and forth",
    ("tiedtransformer/model/search.py", "beam_search"): "one decoding loop over a key/value cache whose beams are "
    "reordered in place each step; it is checked token for token against CTranslate2 and Hugging Face",
    ("tiedtransformer/data/vocab.py", "build_vocabulary"): "the cache key, the sample and the SentencePiece "
    "training of one vocabulary read top to bottom; the key must name every input the training reads",
    ("tiedtransformer/export/card.py", "model_card"): "one document written top to bottom, section after section",
}
LONGEST = 60


def test_no_function_is_long_without_a_stated_reason():
    long = {}
    for path in SOURCES:
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > LONGEST and (rel, node.name) not in LONG_FUNCTIONS:
                    long[f"{rel}:{node.name}"] = n
    assert not long, f"split these or state why they stay whole in LONG_FUNCTIONS: {long}"


def test_no_package_file_is_over_400_lines():
    big = {str(p.relative_to(ROOT)): n for p in SOURCES if (n := len(p.read_text().splitlines())) > 400}
    assert not big, f"split these by what they do: {big}"
