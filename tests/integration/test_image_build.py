"""The image's install step is compiled: the builder stage's sources, laid out from the build
context as deploy/Dockerfile copies them, built by its own step (deploy/build-wheels.sh), give
a purse wheel holding every module setup.py compiles as a native extension.

It takes about a minute (mypyc compiles the engine) and pip fetches the build requirements
(pyproject.toml's [build-system]) as the image build does: `make test-deploy` runs it, and
.ci/run does; elsewhere it is skipped unless PURSE_IMAGE_BUILD=1.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest
from image_definition import builder_stage, lay_out, repository, wheel_step

pytestmark = [
    pytest.mark.image_build,
    pytest.mark.skipif(
        os.environ.get("PURSE_IMAGE_BUILD") != "1",
        reason="the image's wheel build: make test-deploy (PURSE_IMAGE_BUILD=1)",
    ),
    pytest.mark.timeout(600),
]
# mypyc names native extensions by the interpreter they are built for.
extension_suffix = f".cpython-{sys.version_info.major}{sys.version_info.minor}-"


def compiled_modules() -> list[str]:
    """setup.py's `compiled_modules`, read without running setup.py."""
    tree = ast.parse((repository / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "compiled_modules":
            listed: list[str] = ast.literal_eval(node.value)
            return listed
    raise AssertionError("setup.py names no compiled_modules")


def test_the_image_builder_makes_a_wheel_with_every_compiled_module(tmp_path: Path) -> None:
    stage = builder_stage()
    source = tmp_path / "source"
    lay_out(stage, source)
    script, output = wheel_step(stage)
    wheels = tmp_path / output.lstrip("/")
    environment = {**os.environ, "PYTHON": sys.executable, "PURSE_PURE_PYTHON": "1"}
    built = subprocess.run(
        [script, str(wheels)],
        cwd=source,
        env=environment,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (server,) = wheels.glob("purse-*.whl")
    assert len(list(wheels.glob("purse_client-*.whl"))) == 1
    with zipfile.ZipFile(server) as wheel:
        extensions = [name for name in wheel.namelist() if name.endswith(".so")]
    expected = [
        str(PurePosixPath(module).relative_to("src").with_suffix(""))
        for module in compiled_modules()
    ]
    assert len(expected) >= 10
    missing = [
        module
        for module in expected
        if not any(name.startswith(module + extension_suffix) for name in extensions)
    ]
    assert missing == []
    # mypyc's shared runtime for the group, which each module's extension loads.
    assert any("/" not in name and "__mypyc" + extension_suffix in name for name in extensions)
