"""The layout holds: import contracts kept, every module's public names declared, sizes small."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import digest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "digest"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# Kept on purpose, each with its reason (README "How it is built" says the same).
LONG_MODULES: set[str] = set()
LONG_FUNCTIONS = {
    # One Alembic revision creating the whole schema: a list of tables, not logic.
    "store/migrations/versions/0001_initial_schema.py:upgrade",
}


def _modules() -> list[str]:
    names = ["digest"]
    for info in pkgutil.walk_packages(digest.__path__, "digest."):
        # __main__ runs on import (``python -m digest.config``): an entry point, not a module.
        if ".migrations" not in info.name and not info.name.endswith(".__main__"):
            names.append(info.name)
    return names


def test_import_contracts_are_kept() -> None:
    """The layers, the library owners and the no-cycle rule of pyproject.toml all hold."""
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as run; run()",
         "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert " BROKEN" not in result.stdout and "Contracts:" in result.stdout


@pytest.mark.parametrize("name", _modules())
def test_every_module_declares_its_public_names(name: str) -> None:
    """``__all__`` lists every public class and function a module defines, and only real names."""
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not have: {missing}"
    defined = [
        n
        for n, value in vars(module).items()
        if not n.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == name
    ]
    unlisted = [n for n in defined if n not in module.__all__]
    assert not unlisted, f"{name} defines public {unlisted} but leaves them out of __all__"


def test_modules_and_functions_stay_small() -> None:
    """No module over ~400 lines and no function over 60, but for the few kept on purpose."""
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES and rel not in LONG_MODULES:
            too_long.append(f"{rel}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if length > MAX_FUNCTION_LINES and f"{rel}:{node.name}" not in LONG_FUNCTIONS:
                    too_long.append(f"{rel}:{node.name}: {length} lines")
    assert not too_long, "split these along a seam: " + "; ".join(too_long)
