"""Compiles the pure receipt engine, and the pure core around it on the check path (a
check's calculation from what was read, a sale's effects, a batch's settlement, memberships
and their pockets), with mypyc (from the mypy release pinned below).

The modules are plain, strictly typed Python; compiled, the engine runs about 2.5 times
faster, which its speed targets need, and the rest two to six times. Only what measures
faster is listed (README.md, "Performance"), and a module that defines a
`purse.domain.records.Record` must be listed: an interpreted class cannot inherit from a
compiled one. PURSE_PURE_PYTHON=1 skips the
compilation (the same modules then run as Python, with the same results; `make test-pure`
shows it).
"""

import os

from setuptools import setup

compiled_modules = [
    "src/purse/domain/records.py",
    "src/purse/domain/amounts.py",
    "src/purse/domain/checks.py",
    "src/purse/domain/program.py",
    "src/purse/domain/engine.py",
    "src/purse/domain/transactions.py",
    "src/purse/domain/settlement.py",
    "src/purse/domain/customers.py",
    "src/purse/domain/pockets.py",
    "src/purse/domain/calculation.py",
]

extensions = []
if os.environ.get("PURSE_PURE_PYTHON", "") != "1":
    from mypyc.build import mypycify

    extensions = mypycify(compiled_modules, opt_level="3", debug_level="0")

setup(ext_modules=extensions)
