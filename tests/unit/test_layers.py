"""The house reads top-down: every module imports alone, and imports only modules of its floor or below.

The floors, bottom up, as the package's docstring draws them: the basics (errors, enums, records, version),
the file format, the engine, our hooks, boundaries and adapters, the recording kinds, the runner,
the front ends' rooms, and the front doors (plugin, cli, the public faces). Imports are read from the
source as written (at module level, in functions and under TYPE_CHECKING alike).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_retrace"
FLOORS = [
    {"pytest_retrace._version", "pytest_retrace.errors", "pytest_retrace.enums", "pytest_retrace.record",
     "pytest_retrace.frames", "pytest_retrace.fitting", "pytest_retrace.paths", "pytest_retrace.redaction",
     "pytest_retrace.speedups", "pytest_retrace._native"},
    {"pytest_retrace.format"},
    {"pytest_retrace.engine"},
    {"pytest_retrace.hooks"},
    {"pytest_retrace.boundaries", "pytest_retrace.adapters"},
    {"pytest_retrace.kinds"},
    {"pytest_retrace.runner"},
    {"pytest_retrace.front"},
    {"pytest_retrace", "pytest_retrace.plugin", "pytest_retrace.cli", "pytest_retrace.wsgi",
     "pytest_retrace.__main__"},
]


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted([*PACKAGE.rglob("*.py"), PACKAGE / "_native.pyi"]):  # the extension, by its stub
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


MODULES = modules()


def floor(module: str) -> int:
    """The floor of a module: that of its own name, else of the subpackage it is in (a module at the top of the
    package is on no floor until it is listed)."""
    package = module.rpartition(".")[0]
    for part in (module, package if package != "pytest_retrace" else module):
        for level, rooms in enumerate(FLOORS):
            if part in rooms:
                return level
    raise AssertionError(f"{module} is on no floor: add it (or its subpackage) to FLOORS")


def imports(module: str) -> set[str]:
    """The package's modules that ``module`` imports, anywhere in its source."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


GRAPH = {module: imports(module) for module in MODULES}


def test_every_module_is_on_a_floor() -> None:
    assert all(floor(module) >= 0 for module in MODULES)


def test_imports_run_only_down_or_along_a_floor() -> None:
    upward = [f"{module} (floor {floor(module)}) imports {target} (floor {floor(target)})"
              for module, targets in GRAPH.items() for target in targets if floor(target) > floor(module)]
    assert upward == []


def test_no_import_circle() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in GRAPH[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert circles == []


def test_the_file_format_knows_nothing_of_the_engine() -> None:
    for module in ("pytest_retrace.format.codec", "pytest_retrace.format.events", "pytest_retrace.format.tape"):
        assert {target for target in GRAPH[module] if floor(target) > 1} == set(), module


def test_the_child_entry_is_imported_by_no_module() -> None:
    assert [module for module, targets in GRAPH.items() if "pytest_retrace.runner.child" in targets] == []


IMPORTABLE = sorted(set(MODULES) - {"pytest_retrace.__main__"})  # __main__ runs the command line


def _import_alone(module: str) -> str:
    """The last line of what importing ``module`` in a fresh interpreter printed when it failed, else ""."""
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60)
    return proc.stderr.strip().splitlines()[-1] if proc.returncode else ""


@pytest.fixture(scope="module")
def imported_alone() -> dict[str, str]:
    """Every module imported in an interpreter of its own, a few at a time (one by one would take seconds)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(IMPORTABLE, pool.map(_import_alone, IMPORTABLE), strict=True))


@pytest.mark.parametrize("module", IMPORTABLE)
def test_each_module_imports_alone_in_a_fresh_interpreter(module: str, imported_alone: dict[str, str]) -> None:
    assert imported_alone[module] == "", imported_alone[module]
