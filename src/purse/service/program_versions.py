"""What this process knows of the programs' current rule versions, without asking.

PostgreSQL announces every change of a program's rules version once it commits (see
`store.postgres.program_announcements`); this keeps the highest version heard or read per
program, so that an answer showing a rules-dependent figure (an identified customer's
no-PIN points limit) needs no query to know its compiled program is current.

It is trusted only while the announcements are heard: until the listener listens, and
from the moment its connection is lost until it listens again, it knows nothing (every
read asks the database). Each version is trusted for `trust_seconds` at most, so an
announcement lost in a way the connection did not report costs at most that long. A
change made by this process is known here as soon as it commits; other processes hear
of it when PostgreSQL delivers the notification (milliseconds on one network).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from purse.service.cache import ExpiringCache

ProgramKey = tuple[int, int]  # (business_id, program_id)


class AnnouncedVersions:
    """The latest rules version per program, while announcements are heard."""

    def __init__(
        self,
        trust_seconds: float,
        programs_max: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._versions: ExpiringCache[int] = ExpiringCache(trust_seconds, programs_max, clock)
        self._listening = False

    def known(self, business_id: int, program_id: int) -> int | None:
        """The program's version, or None when it must be read from the database."""
        if not self._listening:
            return None
        return self._versions.get((business_id, program_id))

    def learned(self, business_id: int, program_id: int, version: int) -> None:
        """A version heard announced or read: kept unless a higher one is known already
        (a read that raced an announcement must not take the newer version back)."""
        if not self._listening:
            return
        known = self._versions.get((business_id, program_id))
        if known is None or version > known:
            self._versions.put((business_id, program_id), version)

    def listening(self) -> None:
        """Announcements are heard from now on; what was known before may be stale."""
        self._versions.clear()
        self._listening = True

    def deaf(self) -> None:
        """Announcements may be missed from now on: know nothing until `listening`."""
        self._listening = False
        self._versions.clear()
