"""Hearing PostgreSQL announce program rule changes (migration 0015's trigger).

`ProgramAnnouncements` holds one connection of its own (not one of the pool's) that
LISTENs on `purse_program_rules`; each notification, `<business>:<program>:<version>`,
is handed to `heard`. When the connection is lost it tells `deaf` at once and connects
again, with a growing pause, until it is closed; once it listens again it tells
`listening` (the order matters: LISTEN first, then trust, so no change falls between).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

_logger = logging.getLogger(__name__)
CHANNEL = "purse_program_rules"
reconnect_pause_seconds_min = 0.1
reconnect_pause_seconds_max = 10.0


class ProgramAnnouncements:
    """Listens for rule version changes on a connection of its own, reconnecting."""

    def __init__(
        self,
        database_url: str,
        heard: Callable[[int, int, int], None],
        listening: Callable[[], None],
        deaf: Callable[[], None],
        connect_timeout_seconds: float,
    ) -> None:
        self._database_url = database_url
        self._heard = heard
        self._listening = listening
        self._deaf = deaf
        self._connect_timeout_seconds = connect_timeout_seconds
        self._connection: asyncpg.Connection | None = None
        self._lost = asyncio.Event()  # the connection ended (or `close` was called)
        self._closed = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen now if the database answers (else keep trying in the background)."""
        with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
            await self._listen()
        self._task = asyncio.get_running_loop().create_task(self._keep_listening())

    async def close(self) -> None:
        self._closing = True
        self._closed.set()
        self._lost.set()
        if self._task is not None:
            await self._task
        self._deaf()
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close()

    async def _listen(self) -> None:
        connection = await asyncpg.connect(
            self._database_url,
            timeout=self._connect_timeout_seconds,
            server_settings={"application_name": "purse program announcements"},
        )
        try:
            await connection.add_listener(CHANNEL, self._notified)
        except BaseException:
            await connection.close()
            raise
        connection.add_termination_listener(self._terminated)
        self._connection = connection
        self._lost.clear()
        self._listening()

    def _listens(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    async def _keep_listening(self) -> None:
        pause = reconnect_pause_seconds_min
        while not self._closing:
            if self._listens():
                await self._lost.wait()
                continue
            try:
                await self._listen()
                pause = reconnect_pause_seconds_min
                continue
            except (OSError, asyncpg.PostgresError, TimeoutError) as error:
                _logger.warning("cannot listen for program changes (%s)", type(error).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), pause)
            pause = min(pause * 2, reconnect_pause_seconds_max)

    def _terminated(self, _connection: object) -> None:
        self._deaf()
        self._lost.set()

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        try:
            business_id, program_id, version = (int(part) for part in str(payload).split(":"))
        except ValueError:
            _logger.warning("an announcement of a program change could not be read")
            return
        self._heard(business_id, program_id, version)
