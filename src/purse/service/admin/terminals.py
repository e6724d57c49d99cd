"""Terminals and their credentials: create, read, list, update (enable, disable),
archive; a new password; API keys created, listed, revoked and rotated.

A terminal works at one live point of sale of the business, locked while a terminal is
created at it or moved to it. Its login is unique on the instance (ALREADY_EXISTS
LOGIN_TAKEN) and set once. Secrets are hashed before any transaction opens (scrypt for
passwords, off the event loop; SHA-256 for keys) and the hashes never reach the audit log
(`secret_columns`); an API key is handed back once, at creation or rotation.

Authentication (`purse.service.authentication`) caches a terminal for the terminal cache
time, so a disabled or archived terminal, a revoked key, or the tokens of a replaced
password (they carry a stamp of the password's hash) stop working within that time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from purse.domain import credentials
from purse.domain.administrators import Actor
from purse.domain.errors import FailedPrecondition
from purse.domain.setup import Fields
from purse.domain.terminals import TerminalKind
from purse.service.admin.points_of_sale import POINTS_OF_SALE
from purse.service.admin.records import found, live_parent
from purse.service.admin.versioned import Columns, Resource, Versioned
from purse.service.ports import BackOfficeReads, BackOfficeWriting, Row, Table, Writing

TERMINALS = Table("terminals", "terminal_id", secret_columns=frozenset({"password_hash"}))
API_KEYS = Table(
    "terminal_api_keys",
    "api_key_id",
    secret_columns=frozenset({"key_hash"}),
    archived_column="revoked_at",
)
# (what it is, the reason when it is not found)
_terminal_names = ("terminal", "TERMINAL_NOT_FOUND")
_key_names = ("API key", "API_KEY_NOT_FOUND")
_logins = {
    "terminals_login_key": (
        "terminal.login",
        "a terminal with this login (logins are unique on the instance)",
        "LOGIN_TAKEN",
    )
}


@dataclass(frozen=True, slots=True)
class TerminalDraft:
    """What an administrator sets on a terminal; `kind` None: the request left it unset."""

    point_of_sale_id: int
    name: str
    kind: TerminalKind | None
    enabled: bool


@dataclass(frozen=True, slots=True)
class Terminal:
    terminal_id: int
    point_of_sale_id: int
    name: str
    kind: TerminalKind
    login: str
    enabled: bool
    version: int
    created_at: datetime
    archived_at: datetime | None


@dataclass(frozen=True, slots=True)
class TerminalApiKey:
    api_key_id: int
    terminal_id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None


def violations(draft: TerminalDraft) -> Fields:
    """The draft's wrong fields, collected (an update adds its version's)."""
    fields = Fields()
    fields.positive("terminal.point_of_sale_id", draft.point_of_sale_id)
    fields.name("terminal.name", draft.name)
    if draft.kind is None:
        fields.wrong("terminal.kind", "required")
    return fields


def validate(draft: TerminalDraft) -> None:
    violations(draft).raise_if_any()


def validate_new(draft: TerminalDraft, login: str, password: str) -> None:
    """A new terminal: its settings, its login and its first password."""
    fields = violations(draft)
    fields.login("terminal.login", login)
    fields.password("password", password)
    fields.raise_if_any()


def _columns(draft: TerminalDraft) -> dict[str, object]:
    assert draft.kind is not None
    return {
        "point_of_sale_id": draft.point_of_sale_id,
        "name": draft.name,
        "kind": draft.kind.value,
        "enabled": draft.enabled,
    }


def _terminal(row: Row) -> Terminal:
    return Terminal(
        row["terminal_id"],
        row["point_of_sale_id"],
        row["name"],
        TerminalKind(row["kind"]),
        row["login"],
        row["enabled"],
        row["version"],
        row["created_at"],
        row["archived_at"],
    )


def _api_key(row: Row) -> TerminalApiKey:
    return TerminalApiKey(
        row["api_key_id"], row["terminal_id"], row["name"], row["created_at"], row["revoked_at"]
    )


async def _hash(password: str) -> str:
    # scrypt takes tens of milliseconds of CPU on purpose: never on the event loop.
    return await asyncio.to_thread(credentials.hash_password, password)


async def _lock_point_of_sale(writing: Writing, point_of_sale_id: int) -> Columns:
    """Lock the point of sale a terminal is to work at, which must be live (adds no
    column)."""
    live_parent(
        await writing.locked(POINTS_OF_SALE, point_of_sale_id),
        "terminal.point_of_sale_id",
        "point of sale",
        "POINT_OF_SALE_NOT_FOUND",
    )
    return {}


async def _live_terminal(writing: Writing, terminal_id: int) -> Row:
    """The terminal, locked: NOT_FOUND, or FAILED_PRECONDITION ARCHIVED."""
    row = found(await writing.locked(TERMINALS, terminal_id), *_terminal_names)
    if row["archived_at"] is not None:
        raise FailedPrecondition("the terminal is archived", reason="ARCHIVED")
    return row


class KeyRevocation(Protocol):
    """Revoking terminal keys in a writing (`purse.store.postgres.setup`)."""

    async def revoked_key(self, writing: Writing, api_key_id: int) -> Row: ...

    async def revoke_keys_of(self, writing: Writing, terminal_id: int) -> None: ...


class Terminals(Versioned[Terminal]):
    def __init__(
        self, writes: BackOfficeWriting, reads: BackOfficeReads, keys: KeyRevocation
    ) -> None:
        resource = Resource(
            TERMINALS,
            *_terminal_names,
            _terminal,
            unique=_logins,
            parent=(POINTS_OF_SALE, "POINT_OF_SALE_NOT_FOUND"),
        )
        super().__init__(resource, writes, reads)
        self._keys = keys

    async def create(
        self, actor: Actor, draft: TerminalDraft, login: str, password: str
    ) -> Terminal:
        validate_new(draft, login, password)
        columns = {**_columns(draft), "login": login, "password_hash": await _hash(password)}

        async def prepare(writing: Writing) -> Columns:
            return await _lock_point_of_sale(writing, draft.point_of_sale_id)

        return _terminal(await self.create_row(actor, columns, prepare))

    async def update(
        self, actor: Actor, terminal_id: int, expected_version: int, draft: TerminalDraft
    ) -> Terminal:
        validate(draft)

        async def prepare(writing: Writing) -> Columns:
            return await _lock_point_of_sale(writing, draft.point_of_sale_id)

        row = await self.update_row(
            actor, terminal_id, expected_version, _columns(draft), prepare=prepare
        )
        return _terminal(row)

    async def archive(self, actor: Actor, terminal_id: int, expected_version: int) -> Terminal:
        """Archive a terminal; nothing live depends on one, and its keys go with it."""

        async def users(writing: Writing, before: Row) -> str:
            await self._keys.revoke_keys_of(writing, terminal_id)
            return ""

        return _terminal(await self.archive_row(actor, terminal_id, expected_version, users))

    async def set_password(self, actor: Actor, terminal_id: int, new_password: str) -> Terminal:
        """A new password; tokens signed in with the old one are refused from then on."""
        fields = Fields()
        fields.password("new_password", new_password)
        fields.raise_if_any()
        password_hash = await _hash(new_password)
        async with self._writes.writing(actor) as writing:
            before = await _live_terminal(writing, terminal_id)
            after = await writing.updated(TERMINALS, terminal_id, {"password_hash": password_hash})
            await writing.record("set_password", TERMINALS, terminal_id, before, after)
        return _terminal(after)


class TerminalApiKeys(Versioned[TerminalApiKey]):
    """A terminal's API keys: each shown once, stored as its SHA-256 digest."""

    def __init__(
        self, writes: BackOfficeWriting, reads: BackOfficeReads, revocation: KeyRevocation
    ) -> None:
        resource = Resource(
            API_KEYS, *_key_names, _api_key, parent=(TERMINALS, "TERMINAL_NOT_FOUND")
        )
        super().__init__(resource, writes, reads)
        self._revocation = revocation

    async def create(self, actor: Actor, terminal_id: int, name: str) -> tuple[TerminalApiKey, str]:
        """(the key as listed, the key itself)."""
        fields = Fields()
        fields.name("name", name, required=False)
        fields.raise_if_any()
        async with self._writes.writing(actor) as writing:
            await _live_terminal(writing, terminal_id)
            return await self._new_key(writing, terminal_id, name)

    async def revoke(self, actor: Actor, api_key_id: int) -> TerminalApiKey:
        """Revoke a working key (a revoked one: FAILED_PRECONDITION ARCHIVED)."""
        async with self._writes.writing(actor) as writing:
            return _api_key(await self._revoke(writing, api_key_id))

    async def rotate(self, actor: Actor, api_key_id: int) -> tuple[TerminalApiKey, str]:
        """Revoke a working key of a live terminal and create its replacement (same
        terminal and name)."""
        async with self._writes.writing(actor) as writing:
            revoked = await self._revoke(writing, api_key_id)
            await _live_terminal(writing, revoked["terminal_id"])
            return await self._new_key(writing, revoked["terminal_id"], revoked["name"])

    async def _revoke(self, writing: Writing, api_key_id: int) -> Row:
        before = found(await writing.locked(API_KEYS, api_key_id), *_key_names)
        if before["revoked_at"] is not None:
            raise FailedPrecondition("the API key is revoked already", reason="ARCHIVED")
        after = await self._revocation.revoked_key(writing, api_key_id)
        await writing.record("revoke", API_KEYS, api_key_id, before, after)
        return after

    async def _new_key(
        self, writing: Writing, terminal_id: int, name: str
    ) -> tuple[TerminalApiKey, str]:
        secret = credentials.new_api_key()
        digest = credentials.api_key_digest(secret)
        row = await writing.inserted(
            API_KEYS, {"terminal_id": terminal_id, "name": name, "key_hash": digest}
        )
        await writing.record("create", API_KEYS, row["api_key_id"], None, row)
        return _api_key(row), secret
