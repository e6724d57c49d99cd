"""Administrators of a business, their credentials, and the audit log.

An owner manages every administrator; anyone may set their own password (naming the
current one) and manage their own API keys. A business always keeps one active owner:
demoting or archiving the last one is refused (LAST_OWNER). Passwords are hashed off the
event loop; a key is shown once and kept as a digest. Archiving an administrator revokes
its keys in the same transaction. Every change goes to the audit log with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from purse.domain import credentials
from purse.domain.administrators import Access, Actor, AdministratorContext, Role
from purse.domain.errors import FailedPrecondition, NotFound, Unauthenticated
from purse.domain.setup import Fields
from purse.service.admin.records import Page, PageRequest, current, found, page_of, unique_fields
from purse.service.ports import BackOfficeReads, BackOfficeWriting, Row, Table, Writing

ADMINISTRATORS = Table("administrators", "administrator_id", frozenset({"password_hash"}))
API_KEYS = Table("admin_api_keys", "api_key_id", frozenset({"key_hash"}))
_login_taken = {
    "administrators_login_key": ("login", "an administrator with that login", "LOGIN_TAKEN")
}
_what = "administrator"
_not_found = "ADMINISTRATOR_NOT_FOUND"
audit_resource_characters_max = 64


@dataclass(frozen=True, slots=True)
class Administrator:
    administrator_id: int
    login: str
    name: str
    role: Role
    version: int
    created_at: datetime
    archived_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiKey:
    api_key_id: int
    administrator_id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    entry_id: int
    recorded_at: datetime
    administrator_id: int | None
    actor: str
    action: str
    resource: str
    resource_id: str
    before: Any
    after: Any


def administrator_of(row: Row) -> Administrator:
    return Administrator(
        row["administrator_id"],
        row["login"],
        row["name"],
        Role(row["role"]),
        row["version"],
        row["created_at"],
        row["archived_at"],
    )


def api_key_of(row: Row) -> ApiKey:
    return ApiKey(
        row["api_key_id"],
        row["administrator_id"],
        row["name"],
        row["created_at"],
        row["revoked_at"],
    )


def _audit_entry(row: Row) -> AuditEntry:
    return AuditEntry(
        row["entry_id"],
        row["recorded_at"],
        row["administrator_id"],
        row["actor"],
        row["action"],
        row["resource"],
        row["resource_id"],
        row["before"],
        row["after"],
    )


class AdministratorWrites(Protocol):
    """What administrators need beyond plain rows (`purse.store.postgres.administrators`)."""

    async def owners_left(self, writing: Writing, administrator_id: int) -> int: ...

    async def add_key(
        self, writing: Writing, administrator_id: int, name: str, key_digest: bytes
    ) -> Row: ...

    async def revoke_key(self, writing: Writing, api_key_id: int) -> tuple[Row, Row] | None: ...

    async def revoke_keys_of(self, writing: Writing, administrator_id: int) -> None: ...

    async def password_hash(self, business_id: int, administrator_id: int) -> str | None: ...

    async def keys(
        self,
        business_id: int,
        administrator_id: int,
        after_key: int,
        limit: int,
        show_revoked: bool,
    ) -> Sequence[Row]: ...

    async def key(self, business_id: int, api_key_id: int) -> Row | None: ...

    async def audit_entries(
        self, business_id: int, resource: str, resource_id: str, before_entry: int, limit: int
    ) -> Sequence[Row]: ...


async def hashed(password: str) -> str:
    """scrypt, off the event loop."""
    return await asyncio.to_thread(credentials.hash_password, password)


class Administrators:
    def __init__(
        self, writes: BackOfficeWriting, reads: BackOfficeReads, store: AdministratorWrites
    ) -> None:
        self._writes = writes
        self._reads = reads
        self._store = store

    async def get(self, business_id: int, administrator_id: int) -> Administrator:
        row = await self._reads.row(ADMINISTRATORS, business_id, administrator_id)
        return administrator_of(found(row, _what, _not_found))

    async def page(
        self, business_id: int, page_size: int, token: str, show_archived: bool
    ) -> Page[Administrator]:
        request = PageRequest.of(
            page_size, token, ["administrators", business_id, int(show_archived)]
        )
        rows = await self._reads.page(
            ADMINISTRATORS, business_id, request.after, request.limit, show_archived
        )
        return page_of(request, rows, ADMINISTRATORS.key, administrator_of)

    async def create(
        self, actor: Actor, login: str, name: str, role: Role | None, password: str
    ) -> Administrator:
        fields = Fields()
        fields.login("login", login)
        fields.name("name", name, required=False)
        if role is None:
            fields.wrong("role", "required: owner, manager or analyst")
        fields.password("password", password)
        fields.raise_if_any()
        assert role is not None
        password_hash = await hashed(password)
        async with self._writes.writing(actor) as writing:
            with unique_fields(_login_taken):
                row = await writing.inserted(
                    ADMINISTRATORS,
                    {
                        "login": login,
                        "name": name,
                        "role": role.value,
                        "password_hash": password_hash,
                    },
                )
            await writing.record("create", ADMINISTRATORS, row["administrator_id"], None, row)
        return administrator_of(row)

    async def update(
        self,
        actor: Actor,
        administrator_id: int,
        expected_version: int,
        name: str,
        role: Role | None,
    ) -> Administrator:
        fields = Fields()
        fields.expected_version(expected_version)
        fields.name("name", name, required=False)
        if role is None:
            fields.wrong("role", "required: owner, manager or analyst")
        fields.raise_if_any()
        assert role is not None
        async with self._writes.writing(actor) as writing:
            before = current(
                await writing.locked(ADMINISTRATORS, administrator_id),
                expected_version,
                _what,
                _not_found,
            )
            if before["role"] == Role.OWNER.value and role is not Role.OWNER:
                await self._keep_an_owner(writing, administrator_id)
            after = await writing.updated(
                ADMINISTRATORS, administrator_id, {"name": name, "role": role.value}
            )
            await writing.record("update", ADMINISTRATORS, administrator_id, before, after)
        return administrator_of(after)

    async def archive(
        self, actor: Actor, administrator_id: int, expected_version: int
    ) -> Administrator:
        fields = Fields()
        fields.expected_version(expected_version)
        fields.raise_if_any()
        async with self._writes.writing(actor) as writing:
            before = current(
                await writing.locked(ADMINISTRATORS, administrator_id),
                expected_version,
                _what,
                _not_found,
            )
            if before["role"] == Role.OWNER.value:
                await self._keep_an_owner(writing, administrator_id)
            await self._store.revoke_keys_of(writing, administrator_id)
            after = await writing.archived(ADMINISTRATORS, administrator_id)
            await writing.record("archive", ADMINISTRATORS, administrator_id, before, after)
        return administrator_of(after)

    async def _keep_an_owner(self, writing: Writing, administrator_id: int) -> None:
        if await self._store.owners_left(writing, administrator_id) == 0:
            raise FailedPrecondition(
                "a business keeps at least one owner: make someone else an owner first",
                reason="LAST_OWNER",
            )

    async def set_password(
        self,
        caller: AdministratorContext,
        administrator_id: int,
        current_password: str,
        new_password: str,
    ) -> Administrator:
        """One's own (with the current password) or, for an owner, anyone's."""
        own = administrator_id in (0, caller.administrator_id)
        target = caller.administrator_id if own else administrator_id
        if not own:
            caller.require(Access.ADMINISTER)
        fields = Fields()
        fields.password("new_password", new_password)
        if own and not current_password:
            fields.wrong("current_password", "required to change one's own password")
        fields.raise_if_any()
        if own:
            stored = await self._store.password_hash(caller.business_id, target)
            matches = stored is not None and await asyncio.to_thread(
                credentials.verify_password, current_password, stored
            )
            if not matches:
                raise Unauthenticated("the current password is wrong", reason="WRONG_CREDENTIALS")
        password_hash = await hashed(new_password)
        async with self._writes.writing(caller.actor) as writing:
            before = found(await writing.locked(ADMINISTRATORS, target), _what, _not_found)
            if before["archived_at"] is not None:
                raise FailedPrecondition("the administrator is archived", reason="ARCHIVED")
            after = await writing.updated(ADMINISTRATORS, target, {"password_hash": password_hash})
            await writing.record("set_password", ADMINISTRATORS, target, before, after)
        return administrator_of(after)

    async def create_key(
        self, caller: AdministratorContext, administrator_id: int, name: str
    ) -> tuple[ApiKey, str]:
        """A new key (shown once) for oneself or, for an owner, anyone."""
        target = administrator_id or caller.administrator_id
        if target != caller.administrator_id:
            caller.require(Access.ADMINISTER)
        fields = Fields()
        fields.name("name", name, required=False)
        fields.raise_if_any()
        secret = credentials.new_api_key()
        async with self._writes.writing(caller.actor) as writing:
            owner = found(await writing.locked(ADMINISTRATORS, target), _what, _not_found)
            if owner["archived_at"] is not None:
                raise FailedPrecondition("the administrator is archived", reason="ARCHIVED")
            row = await self._store.add_key(
                writing, target, name, credentials.api_key_digest(secret)
            )
            await writing.record("create", API_KEYS, row["api_key_id"], None, row)
        return api_key_of(row), secret

    async def keys(
        self,
        business_id: int,
        administrator_id: int,
        page_size: int,
        token: str,
        show_revoked: bool,
    ) -> Page[ApiKey]:
        request = PageRequest.of(
            page_size, token, ["api_keys", business_id, administrator_id, int(show_revoked)]
        )
        if administrator_id and not token:
            await self.get(business_id, administrator_id)  # another business's: NOT_FOUND
        rows = await self._store.keys(
            business_id, administrator_id, request.after, request.limit, show_revoked
        )
        return page_of(request, rows, API_KEYS.key, api_key_of)

    async def _own_key(self, caller: AdministratorContext, api_key_id: int) -> Row:
        row = await self._store.key(caller.business_id, api_key_id)
        if row is None:
            raise NotFound("no such API key in this business", reason="API_KEY_NOT_FOUND")
        if row["administrator_id"] != caller.administrator_id:
            caller.require(Access.ADMINISTER)
        return row

    async def revoke_key(self, caller: AdministratorContext, api_key_id: int) -> ApiKey:
        await self._own_key(caller, api_key_id)
        async with self._writes.writing(caller.actor) as writing:
            revoked = await self._store.revoke_key(writing, api_key_id)
            if revoked is None:
                raise FailedPrecondition("the key is revoked already", reason="ARCHIVED")
            before, after = revoked
            await writing.record("revoke", API_KEYS, api_key_id, before, after)
        return api_key_of(after)

    async def rotate_key(self, caller: AdministratorContext, api_key_id: int) -> tuple[ApiKey, str]:
        """A new key with the old one's owner and name; the old one revoked with it."""
        await self._own_key(caller, api_key_id)
        secret = credentials.new_api_key()
        async with self._writes.writing(caller.actor) as writing:
            revoked = await self._store.revoke_key(writing, api_key_id)
            if revoked is None:
                raise FailedPrecondition("the key is revoked already", reason="ARCHIVED")
            before, after = revoked
            await writing.record("revoke", API_KEYS, api_key_id, before, after)
            row = await self._store.add_key(
                writing,
                before["administrator_id"],
                before["name"],
                credentials.api_key_digest(secret),
            )
            await writing.record("create", API_KEYS, row["api_key_id"], None, row)
        return api_key_of(row), secret

    async def audit(
        self, business_id: int, resource: str, resource_id: str, page_size: int, token: str
    ) -> Page[AuditEntry]:
        fields = Fields()
        fields.text("resource", resource, audit_resource_characters_max)
        fields.text("resource_id", resource_id, 200)
        if resource_id and not resource:
            fields.wrong("resource", "required with resource_id")
        fields.raise_if_any()
        request = PageRequest.of(page_size, token, ["audit", business_id, resource, resource_id])
        rows = await self._store.audit_entries(
            business_id, resource, resource_id, request.after, request.limit
        )
        return page_of(request, rows, "entry_id", _audit_entry)
