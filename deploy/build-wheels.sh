#!/bin/sh
# The wheels the image installs, built from a source tree: purse-client (clients/python) and
# purse with its engine compiled by mypyc (setup.py; needs a C compiler). The image's builder
# stage runs this, and so does tests/integration/test_image_build.py, so what the test finds
# in the wheel is what the image installs.
#
#   deploy/build-wheels.sh OUTPUT_DIRECTORY   (PYTHON names the interpreter, default python3)
#
# pip builds each in an isolated environment from pyproject.toml's build requirements (the
# pinned mypy among them). PURSE_PURE_PYTHON is cleared: an image is always compiled.
set -eu
output=${1:?usage: deploy/build-wheels.sh OUTPUT_DIRECTORY}
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
unset PURSE_PURE_PYTHON
"$python" -m pip wheel --no-cache-dir --no-deps --wheel-dir "$output" \
    "$root/clients/python" "$root"
