"""The modules setup.py compiles run compiled, or, in the parity run (PURSE_PURE_PYTHON=1,
`make test-pure`), as the plain Python they are built from: all of them one way."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pure_python

setup_file = Path(__file__).resolve().parents[2] / "setup.py"


def compiled_module_names() -> list[str]:
    """The modules setup.py lists for mypyc, as module names."""
    for node in ast.walk(ast.parse(setup_file.read_text())):
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "compiled_modules"
            for target in node.targets
        ):
            paths: list[str] = ast.literal_eval(node.value)
            return [
                path.removeprefix("src/").removesuffix(".py").replace("/", ".") for path in paths
            ]
    raise AssertionError("setup.py lists no compiled_modules")


def test_the_compiled_modules_all_run_one_way_and_as_plain_python_when_asked() -> None:
    names = compiled_module_names()
    as_python = {
        name: str(importlib.import_module(name).__file__).endswith(".py") for name in names
    }
    assert "purse.domain.engine" in as_python
    if pure_python.asked():
        assert all(as_python.values()), as_python
    else:
        # A mix means a stale build: a module listed since the last install.
        assert len(set(as_python.values())) == 1, as_python
