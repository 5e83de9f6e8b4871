"""Imports go one way: holocrm_cli, holocrm_api, pipelines -> holocrm_core, and every import is static.

Read from the source with ``ast`` (nothing is imported), so an import inside a function counts too.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("holocrm_core", "pipelines", "holocrm_api", "holocrm_cli")
# What the library must never import: the application frameworks and the layers above it.
FORBIDDEN_IN_CORE = {"dagster", "fastapi", "typer", "starlette", "pipelines", "holocrm_api", "holocrm_cli"}
# Dynamic imports still in the API's loader (`_optional_module`), which the api branch removes (issue 10,
# item 5). The integrator deletes this entry when that branch is merged; any other file fails at once.
PENDING_DYNAMIC_IMPORTS: set[str] = set()


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@functools.cache
def _parsed(path: Path) -> ast.Module:
    """A module's syntax tree, parsed once for the module's tests (trees are only read)."""
    return ast.parse(path.read_text(), path.relative_to(ROOT).as_posix())


def _imported_roots(tree: ast.AST) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return {root.split("_")[0] if root.startswith("dagster_") else root for root in roots}


def _dynamic_imports(tree: ast.AST) -> list[int]:
    """Lines calling importlib.import_module / import_module / __import__."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("import_module", "__import__"):
            lines.append(node.lineno)
    return lines


def test_core_imports_no_framework_and_no_layer_above_it():
    offenders = []
    for path in _modules("holocrm_core"):
        bad = _imported_roots(_parsed(path)) & FORBIDDEN_IN_CORE
        offenders += [f"{path.relative_to(ROOT)} imports {name}" for name in sorted(bad)]
    assert offenders == [], "holocrm_core must stay plain Python:\n" + "\n".join(offenders)


def test_no_dynamic_imports_in_the_project():
    offenders = []
    for package in PROJECT_PACKAGES:
        for path in _modules(package):
            rel = path.relative_to(ROOT).as_posix()
            lines = _dynamic_imports(_parsed(path))
            if lines and rel not in PENDING_DYNAMIC_IMPORTS:
                offenders.append(f"{rel}: line(s) {', '.join(map(str, lines))}")
    assert offenders == [], (
        "import modules by name, so readers and type checkers see the arrow:\n" + "\n".join(offenders)
    )


def test_the_checks_see_what_they_must_catch():
    """The detectors themselves: an import inside a function and a dynamic import are both found."""
    tree = ast.parse("def f():\n    import dagster.asset\n    from fastapi import X\n")
    assert _imported_roots(tree) >= {"dagster", "fastapi"}
    assert _imported_roots(ast.parse("import dagster_webserver")) == {"dagster"}
    assert _dynamic_imports(ast.parse("import importlib\nm = importlib.import_module('holocrm_core.x')")) == [
        2
    ]
    assert _dynamic_imports(ast.parse("x = __import__('pipelines')")) == [1]


# The sample generator (holocrm_core.synth) and its hidden truth are for making a sample export and for
# checking the sample's own truth: the product never reads them, so it works on exports the generator did
# not make. Who may import it, besides synth itself, tests and benchmarks:
SYNTH_ALLOWED = {
    "holocrm_cli/pipeline.py",  # the `generate` command
    # Generated data only: the sample's true outreach world (response model, reps' logging policy). The
    # product imports it only inside a function, when the export is the generator's (checked below).
    "holocrm_core/rl/truth.py",
}
# Modules that still import synth while being moved off it. The integrator deletes an entry when that module
# stops importing synth; any other file fails at once. (Empty: the RL world fits its industries from the
# export and keeps the generator's truth in rl/truth.py.)
PENDING_SYNTH_IMPORTS: set[str] = set()
GENERATED_ONLY = ("holocrm_core.rl.truth",)


def _imports_synth(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.startswith("holocrm_core.synth") for a in node.names):
            return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("holocrm_core.synth")
        ):
            return True
    return False


def test_nothing_in_the_product_imports_the_sample_generator():
    offenders = []
    for package in PROJECT_PACKAGES:
        for path in _modules(package):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("holocrm_core/synth/") or rel in SYNTH_ALLOWED | PENDING_SYNTH_IMPORTS:
                continue
            if _imports_synth(_parsed(path)):
                offenders.append(rel)
    assert offenders == [], (
        "only the generate command, tests and benchmarks may import holocrm_core.synth (serving and training "
        "must work on exports the generator did not make):\n" + "\n".join(offenders)
    )
    assert _imports_synth(ast.parse("def f():\n    from holocrm_core.synth.vocabulary import INDUSTRIES\n"))


def _top_level_imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_generated_data_only_modules_are_imported_lazily_by_the_product():
    """Serving and training load on an export the generator did not make without loading its truth."""
    offenders = []
    for package in PROJECT_PACKAGES:
        for path in _modules(package):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("holocrm_core/synth/") or rel in SYNTH_ALLOWED:
                continue
            tree = _parsed(path)
            eager = {m for m in _top_level_imports(tree) if m.startswith(GENERATED_ONLY)}
            offenders += [f"{rel} imports {m} at the top" for m in sorted(eager)]
    assert offenders == [], "import the generated-data-only modules inside a function:\n" + "\n".join(
        offenders
    )
    assert _top_level_imports(ast.parse("from holocrm_core.rl.truth import SampleTruth\n")) == {
        "holocrm_core.rl.truth"
    }
    assert (
        _top_level_imports(ast.parse("def f():\n    from holocrm_core.rl.truth import SampleTruth\n"))
        == set()
    )
