"""The parity run: with PURSE_PURE_PYTHON=1, the modules setup.py compiles with mypyc are
imported from the plain Python they are compiled from, even where the compiled ones are
installed, so that the same tests show both give the same results (`make test-pure`).

Imported by the suite's conftest before anything imports Purse. Only this process is
affected: a server an end-to-end test starts runs what is installed. Installed with
PURSE_PURE_PYTHON=1, nothing is compiled and this changes nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Finds a Purse module's source where a compiled module stands beside it."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("purse.") or path is None:
            return None
        found = importlib.machinery.PathFinder.find_spec(fullname, path)
        if found is None or not isinstance(found.loader, importlib.machinery.ExtensionFileLoader):
            return None
        assert found.origin is not None
        source = Path(found.origin).with_name(fullname.rpartition(".")[2] + ".py")
        if not source.exists():
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def asked() -> bool:
    """Whether this run is the parity run."""
    return os.environ.get("PURSE_PURE_PYTHON", "") == "1"


if asked():
    sys.meta_path.insert(0, _SourceFirst())
