"""The image's definition as a build reads it: deploy/Dockerfile's stages, read with a port of
BuildKit's parser, and the build context .dockerignore leaves, matched with a port of Docker's
own pattern matcher. The unit tests check what the image is made of; the image build test
lays out the builder stage's sources from them and runs its build step.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from e2b_dockerfile_utils import DockerfileInstruction, PatternMatcher, parse_dockerfile_ast

repository = Path(__file__).resolve().parent.parent
dockerfile = repository / "deploy" / "Dockerfile"
wheel_script = "deploy/build-wheels.sh"


@dataclass(frozen=True)
class Stage:
    """One FROM and the instructions after it, up to the next FROM."""

    base: str
    name: str
    instructions: tuple[DockerfileInstruction, ...]

    def named(self, instruction: str) -> list[DockerfileInstruction]:
        return [each for each in self.instructions if each.name == instruction]


def stages() -> list[Stage]:
    """deploy/Dockerfile's build stages in order (the last one is the image)."""
    found: list[Stage] = []
    parsed = parse_dockerfile_ast(dockerfile.read_text())
    for instruction in parsed.instructions:
        if instruction.name == "FROM":
            base, *alias = instruction.args
            name = alias[1] if alias and alias[0].upper() == "AS" else ""
            found.append(Stage(base, name, ()))
        elif found:
            last = found[-1]
            found[-1] = Stage(last.base, last.name, (*last.instructions, instruction))
    return found


def builder_stage() -> Stage:
    return next(stage for stage in stages() if stage.name == "builder")


def wheel_step(stage: Stage) -> list[str]:
    """The builder's RUN of deploy/build-wheels.sh, as words: the script and its output."""
    runs = [shlex.split(run.args[0]) for run in stage.named("RUN") if not run.json]
    return next(words for words in runs if words[0] == wheel_script)


def context_matcher() -> PatternMatcher:
    return PatternMatcher((repository / ".dockerignore").read_text().splitlines())


def context_files(root: Path = repository) -> list[str]:
    """Every file under `root` that a build sends, as paths relative to it; a directory
    the patterns exclude is walked only when a `!` pattern may bring something back."""
    matcher = context_matcher()
    sent: list[str] = []
    for directory, subdirectories, files in os.walk(root):
        relative = Path(directory).relative_to(root)
        kept = []
        for subdirectory in subdirectories:
            path = (relative / subdirectory).as_posix()
            if not matcher.matches(path) or matcher.may_match_under(path):
                kept.append(subdirectory)
        subdirectories[:] = kept
        sent.extend(
            path
            for path in ((relative / name).as_posix() for name in files)
            if not matcher.matches(path)
        )
    return sorted(sent)


def copy_sources(stage: Stage) -> list[tuple[str, str]]:
    """(source, destination) for each source of each COPY of a stage from the context."""
    pairs: list[tuple[str, str]] = []
    for copy in stage.named("COPY"):
        if any(flag.startswith("--from") for flag in copy.flags):
            continue
        *sources, destination = copy.args
        pairs.extend((source, destination) for source in sources)
    return pairs


def lay_out(stage: Stage, destination: Path) -> None:
    """Copy what the stage's COPY instructions take from the build context into
    `destination`, its WORKDIR, as the build would."""
    sent = context_files()
    for source, target in copy_sources(stage):
        for path in sent:
            if path == source:
                place = destination / target / Path(source).name
                if not target.endswith("/"):
                    place = destination / target
            elif path.startswith(source + "/"):
                place = destination / target / path.removeprefix(source + "/")
            else:
                continue
            place.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repository / path, place)
