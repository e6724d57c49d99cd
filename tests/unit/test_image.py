"""The server image as deploy/Dockerfile and .dockerignore define it: two stages on one
interpreter, the engine compiled in the builder, installed as a user without privileges,
health through gRPC health, and a build context without local environments, data or secrets.
(The wheel build itself runs in tests/integration/test_image_build.py.)"""

from __future__ import annotations

import os
import subprocess

from image_definition import (
    builder_stage,
    context_files,
    context_matcher,
    copy_sources,
    repository,
    stages,
    wheel_script,
    wheel_step,
)

from purse.config import Settings


def test_the_builder_and_the_image_run_the_same_interpreter() -> None:
    builder, image = stages()
    assert builder.name == "builder"
    assert builder.base == image.base == "${PYTHON_IMAGE}"
    text = (repository / "deploy" / "Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text


def test_the_builder_builds_the_wheels_with_the_script_the_build_test_runs() -> None:
    script, output = wheel_step(builder_stage())
    assert script == wheel_script
    assert output.startswith("/")
    assert os.access(repository / wheel_script, os.X_OK)


def test_the_image_installs_the_builders_wheels_and_nothing_from_a_registry() -> None:
    image = stages()[-1]
    installs = [run for run in image.named("RUN") if "pip install" in run.args[0]]
    assert len(installs) == 1
    assert "--mount=type=bind,from=builder,source=/wheels,target=/wheels" in installs[0].flags
    assert "--no-index --find-links /wheels purse" in installs[0].args[0]
    assert not image.named("COPY"), "the image takes nothing from the context"


def test_the_image_runs_as_a_numbered_user_that_owns_the_data_directory() -> None:
    image = stages()[-1]
    (user,) = image.named("USER")
    uid, gid = user.args[0].split(":")
    assert int(uid) > 0
    assert int(gid) > 0
    environment = image.named("ENV")[0].args
    data_dir = environment[environment.index("PURSE_DATA_DIR") + 1]
    assert image.named("WORKDIR")[0].args == [data_dir]
    created = " ".join(run.args[0] for run in image.named("RUN"))
    assert f"--uid {uid}" in created
    assert f"install -d -o purse -g purse -m 0750 {data_dir}" in created


def test_the_image_listens_everywhere_checks_grpc_health_and_stops_on_sigterm() -> None:
    image = stages()[-1]
    defaults = Settings()
    assert image.named("EXPOSE")[0].args == [str(defaults.grpc_port), str(defaults.http_port)]
    environment = image.named("ENV")[0].args
    assert environment[environment.index("PURSE_GRPC_HOST") + 1] == "0.0.0.0"
    assert environment[environment.index("PURSE_HTTP_HOST") + 1] == "0.0.0.0"
    (health,) = image.named("HEALTHCHECK")
    assert health.args == ["CMD", "purse", "health"]
    assert image.named("STOPSIGNAL")[0].args == ["SIGTERM"]
    assert image.named("ENTRYPOINT")[0].args == ["purse"]
    assert image.named("CMD")[0].args == ["serve"]


def test_the_build_context_leaves_out_environments_data_builds_and_secrets() -> None:
    matcher = context_matcher()
    left_out = [
        ".venv/bin/python",
        ".purse/demo-terminal.json",
        ".purse/postgres/base/1/1259",
        ".git/config",
        "build/protos-check/descriptors.binpb",
        "dist/purse-0.1.0.tar.gz",
        "src/purse/domain/engine.cpython-311-x86_64-linux-gnu.so",
        "src/purse/domain/__pycache__/engine.cpython-311.pyc",
        "src/purse.egg-info/PKG-INFO",
        "clients/python/build/lib/purse/client/calls.py",
        "clients/typescript/node_modules/typescript/package.json",
        ".env",
        "deploy/.env",
        "deploy/secrets/database-url",
        "src/purse/tls/server.key",
        "demo-terminal.json",
        "generated-business.json",
        ".mypy_cache/3.11/purse/cli.meta.json",
    ]
    assert [path for path in left_out if not matcher.matches(path)] == []


def test_the_build_context_holds_every_tracked_file_the_builder_copies() -> None:
    sources = [source for source, _ in copy_sources(builder_stage())]
    tracked = subprocess.run(
        ["git", "ls-files", "--", *sources],
        cwd=repository,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert len(tracked) > 100
    assert sorted(set(tracked) - set(context_files())) == []


def test_the_build_context_holds_only_what_the_builder_copies() -> None:
    sources = [source for source, _ in copy_sources(builder_stage())]
    outside = [
        path
        for path in context_files()
        if not any(path == source or path.startswith(source + "/") for source in sources)
    ]
    assert outside == []
