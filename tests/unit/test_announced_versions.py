"""What a server knows of program versions: only while it listens, never older than what
it knew, and never longer than it is trusted."""

from __future__ import annotations

from typing import Any

from purse.service.admin.programs import Programs
from purse.service.program_versions import AnnouncedVersions


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_nothing_is_known_before_announcements_are_heard() -> None:
    versions = AnnouncedVersions(30.0, 10)
    versions.learned(1, 2, 5)
    assert versions.known(1, 2) is None


def test_a_version_read_never_takes_back_a_newer_one_heard() -> None:
    versions = AnnouncedVersions(30.0, 10)
    versions.listening()
    versions.learned(1, 2, 6)
    versions.learned(1, 2, 5)
    assert versions.known(1, 2) == 6
    versions.learned(1, 2, 7)
    assert versions.known(1, 2) == 7


def test_a_version_is_trusted_only_for_its_trust_period() -> None:
    clock = Clock()
    versions = AnnouncedVersions(30.0, 10, clock)
    versions.listening()
    versions.learned(1, 2, 5)
    clock.now += 29.9
    assert versions.known(1, 2) == 5
    clock.now += 0.2
    assert versions.known(1, 2) is None


def test_going_deaf_forgets_everything_and_listening_again_starts_afresh() -> None:
    versions = AnnouncedVersions(30.0, 10)
    versions.listening()
    versions.learned(1, 2, 5)
    versions.deaf()
    assert versions.known(1, 2) is None
    versions.listening()
    assert versions.known(1, 2) is None


def test_programs_known_are_bounded() -> None:
    versions = AnnouncedVersions(30.0, 2)
    versions.listening()
    for program_id in range(5):
        versions.learned(1, program_id, 1)
    assert sum(versions.known(1, program_id) is not None for program_id in range(5)) == 2


class StoredRules:
    """A program's stored version and (default) rules, counting what is read."""

    def __init__(self, version: int) -> None:
        self.version_now = version
        self.version_reads = 0
        self.rules_reads = 0

    async def version(self, business_id: int, program_id: int) -> int | None:
        self.version_reads += 1
        return self.version_now

    async def rules(self, business_id: int, program_id: int) -> tuple[int, dict[str, Any]]:
        self.rules_reads += 1
        return self.version_now, {}


async def test_a_program_announced_current_is_compiled_once_and_never_asked_about() -> None:
    stored = StoredRules(3)
    versions = AnnouncedVersions(30.0, 10)
    versions.listening()
    versions.learned(1, 2, 3)
    programs = Programs(stored, versions=versions)  # type: ignore[arg-type]
    first = await programs.compiled(1, 2, "UAH")
    assert await programs.compiled(1, 2, "UAH") is first
    assert (stored.version_reads, stored.rules_reads) == (0, 1)
    stored.version_now = 4
    versions.learned(1, 2, 4)  # announced
    assert await programs.compiled(1, 2, "UAH") is not first
    assert (stored.version_reads, stored.rules_reads) == (0, 2)


async def test_without_announcements_every_use_asks_for_the_version() -> None:
    stored = StoredRules(3)
    programs = Programs(stored)  # type: ignore[arg-type]
    await programs.compiled(1, 2, "UAH")
    await programs.compiled(1, 2, "UAH")
    assert (stored.version_reads, stored.rules_reads) == (2, 1)
