"""The package's shape: imports point one way and form no cycle (import-linter, configured in
pyproject.toml), modules and functions stay small, and no private name crosses a module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "optbuild"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# Longer on purpose, with the reason.
LONG_FUNCTIONS = {
    # One straight-line measurement protocol; splitting it would hide the order of the runs.
    "optbuild/stages/intel/benchmark.py:benchmark",
    # The standalone kit script's TensorRT build: one readable sequence of builder calls.
    "optbuild/stages/nvidia/engine.py:build",
}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_imports_follow_the_layers_and_have_no_cycles() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_modules_are_small() -> None:
    long = {str(p.relative_to(REPO)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_functions_are_short() -> None:
    long = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                name = f"{path.relative_to(REPO)}:{node.name}"
                if length > MAX_FUNCTION_LINES and name not in LONG_FUNCTIONS:
                    long.append(f"{name} ({length} lines)")
    assert long == []


def test_no_private_name_is_imported_across_modules() -> None:
    crossing = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("optbuild"):
                crossing += [f"{path.relative_to(REPO)}: {node.module}.{alias.name}" for alias in node.names
                             if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert crossing == []
