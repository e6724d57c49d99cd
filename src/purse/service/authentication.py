"""Terminal authentication: sign-in with login and password, bearer tokens, API keys.

Sign-in counts before it compares: one attempt of the login is reserved in Redis (one
script) before its password is looked at, so at most `sign_in_attempts_max` passwords
of a login are ever evaluated per window, however many calls arrive at once; the rest
are refused (RateLimited, SIGN_IN_RATE_LIMITED). A right password gives its attempt
back; wrong ones count until the window ends (a success does not wipe them).

Hashes are verified off the event loop, at most `password_checks_concurrent_max` at once
(`PasswordChecks`); a sign-in that finds them all busy is refused at once (RateLimited,
SIGN_IN_BUSY) and its attempt given back. An unknown login computes no hash: it is
answered WRONG_CREDENTIALS after the time a check typically takes, so a flood of made-up
logins costs timers, not CPU, and cannot starve real sign-ins; it is refused as busy
exactly when a known login would be, so neither answer nor timing says which logins exist.

Every later call presents a token (verified by signature, no database) or an API key
(found by its SHA-256); the terminal it resolves to is cached for `cache_seconds`, so
disabling a terminal takes effect within that time.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from purse.domain import credentials
from purse.domain.administrators import AdministratorContext
from purse.domain.errors import PermissionDenied, RateLimited, Unauthenticated, invalid
from purse.domain.terminals import TerminalContext
from purse.service.cache import ExpiringCache
from purse.service.ports import AdministratorReads, Limit, TerminalReads
from purse.store.redis import keys

Caller = TypeVar("Caller", TerminalContext, AdministratorContext)
login_characters_max = 64
password_characters_max = 256
# When every password check is busy: how long until trying again makes sense.
password_check_busy_retry_seconds = 1
# How much each measured check moves the typical duration unknown logins wait for.
_typical_check_weight = 0.2


class PasswordChecks:
    """Verifies password hashes in threads, at most `concurrent_max` at once; the excess
    is refused at once. `verify(password, None)` (an unknown login) computes nothing and
    answers False after the typical duration of a real check."""

    def __init__(self, concurrent_max: int) -> None:
        assert concurrent_max > 0
        self._concurrent_max = concurrent_max
        self._in_flight = 0
        started = time.perf_counter()
        credentials.verify_password("calibration", credentials.UNKNOWN_LOGIN_HASH)
        self._typical_seconds = time.perf_counter() - started

    async def verify(self, password: str, stored_hash: str | None) -> bool:
        if self._in_flight >= self._concurrent_max:
            raise RateLimited(
                "too many sign-ins at once; try again shortly",
                reason="SIGN_IN_BUSY",
                retry_after_seconds=password_check_busy_retry_seconds,
            )
        if stored_hash is None:
            await asyncio.sleep(self._typical_seconds)
            return False
        self._in_flight += 1
        try:
            started = time.perf_counter()
            matches = await asyncio.to_thread(credentials.verify_password, password, stored_hash)
            took = time.perf_counter() - started
            self._typical_seconds += (took - self._typical_seconds) * _typical_check_weight
            return matches
        finally:
            self._in_flight -= 1


async def _checked_sign_in(
    attempts: Limit,
    password_checks: PasswordChecks,
    attempt_key: str,
    login: str,
    password: str,
    lookup: Callable[[str], Awaitable[tuple[Caller, str | None] | None]],
) -> Caller:
    """Count before compare: one attempt of the login is reserved, then its password is
    checked (an unknown login, or one `lookup` gives no hash, computes none); a right
    password, or one never evaluated (busy, an outage), gives the attempt back."""
    if not login or len(login) > login_characters_max:
        raise invalid("login", f"a login has 1 to {login_characters_max} characters")
    if not password or len(password) > password_characters_max:
        raise invalid("password", f"a password has 1 to {password_characters_max} characters")
    await attempts.take(
        attempt_key,
        "too many wrong passwords for this login; try again later",
        "SIGN_IN_RATE_LIMITED",
    )
    failed = False
    try:
        found = await lookup(login)
        matches = await password_checks.verify(password, None if found is None else found[1])
        failed = found is None or not matches
    finally:
        if not failed:
            await attempts.release(attempt_key)
    if found is None or failed:
        raise Unauthenticated("wrong login or password", reason="WRONG_CREDENTIALS")
    return found[0]


class Authenticator:
    """Turns credentials into a TerminalContext, or refuses."""

    def __init__(
        self,
        terminals: TerminalReads,
        attempts: Limit,
        password_checks: PasswordChecks,
        token_key: bytes,
        token_lifetime_seconds: int,
        cache_seconds: float,
        cache_entries_max: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._terminals = terminals
        self._attempts = attempts
        self._password_checks = password_checks
        self._token_key = token_key
        self._token_lifetime_seconds = token_lifetime_seconds
        self._clock = clock
        self._cache: ExpiringCache[TerminalContext] = ExpiringCache(
            cache_seconds, cache_entries_max
        )

    async def sign_in(self, login: str, password: str) -> tuple[str, int, TerminalContext]:
        """(token, expiry in Unix seconds, terminal)."""

        async def lookup(login: str) -> tuple[TerminalContext, str | None] | None:
            found = await self._terminals.for_sign_in(login)
            if found is None:
                return None
            # A disabled terminal is answered as an unknown login is: no hash is checked,
            # so the answer cannot tell a right password from a wrong one.
            return found[0], found[1] if found[0].enabled else None

        found = await _checked_sign_in(
            self._attempts, self._password_checks, keys.sign_in_attempts(login), login,
            password, lookup,
        )  # fmt: skip
        terminal = _enabled(found)
        expires_at = int(self._clock()) + self._token_lifetime_seconds
        token = credentials.issue_terminal_token(
            self._token_key,
            credentials.TerminalClaims(
                terminal.business_id, terminal.terminal_id, expires_at, terminal.credential_stamp
            ),
        )
        return token, expires_at, terminal

    async def authenticate(self, credential: str) -> TerminalContext:
        """The terminal behind a bearer token or API key."""
        if not credential:
            raise Unauthenticated(
                "send 'authorization: Bearer <token or API key>'", reason="CREDENTIALS_MISSING"
            )
        if credential.startswith(credentials.api_key_prefix):
            digest = credentials.api_key_digest(credential)
            terminal = await _cached(
                self._cache, digest, lambda: self._terminals.by_api_key(digest),
                Unauthenticated(_unknown_key("terminal"), reason="API_KEY_INVALID"),
            )  # fmt: skip
            return _enabled(terminal)
        claims = credentials.verify_terminal_token(self._token_key, credential, self._clock())
        terminal = await _cached(
            self._cache, (claims.business_id, claims.terminal_id),
            lambda: self._terminals.by_id(claims.business_id, claims.terminal_id),
            Unauthenticated("the terminal no longer exists", reason="TOKEN_INVALID"),
        )  # fmt: skip
        if not hmac.compare_digest(claims.credential_stamp, terminal.credential_stamp):
            raise Unauthenticated(
                "the terminal's password changed after this token was issued; sign in again",
                reason="TOKEN_REVOKED",
            )
        return _enabled(terminal)


async def _cached(
    cache: ExpiringCache[Caller],
    key: Hashable,
    lookup: Callable[[], Awaitable[Caller | None]],
    refusal: Unauthenticated,
) -> Caller:
    """Who a credential speaks for: from the cache, else looked up (and kept); `refusal`
    when no one is behind it."""
    found = cache.get(key)
    if found is None:
        found = await lookup()
        if found is None:
            raise refusal
        cache.put(key, found)
    return found


def _unknown_key(kind: str) -> str:
    """Every kind of key looks alike (purse_key_…): say which kind this service takes."""
    return (
        f"unknown or revoked {kind} API key (terminal, administrator and operator keys"
        " each open their own service)"
    )


def _enabled(terminal: TerminalContext) -> TerminalContext:
    if not terminal.enabled:
        raise PermissionDenied("this terminal is disabled", reason="TERMINAL_DISABLED")
    return terminal


class AdministratorAuthenticator:
    """Turns an administrator's credentials into the administrator they speak for.

    Sign-in works as for terminals (count before compare, hashes off the loop, unknown
    logins answered after a typical check's time) with a lockout per login of its own.
    API keys are found by digest, tokens verified by signature; either is cached for
    `cache_seconds` (the terminal cache's window), so a revoked key, an archived
    administrator or a new password stop working within it.
    """

    def __init__(
        self,
        administrators: AdministratorReads,
        attempts: Limit,
        password_checks: PasswordChecks,
        token_key: bytes,
        token_lifetime_seconds: int,
        cache_seconds: float,
        cache_entries_max: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._administrators = administrators
        self._attempts = attempts
        self._password_checks = password_checks
        self._token_key = token_key
        self._token_lifetime_seconds = token_lifetime_seconds
        self._clock = clock
        self._cache: ExpiringCache[AdministratorContext] = ExpiringCache(
            cache_seconds, cache_entries_max
        )

    async def sign_in(self, login: str, password: str) -> tuple[str, int, AdministratorContext]:
        """(token, expiry in Unix seconds, administrator)."""
        administrator = await _checked_sign_in(
            self._attempts, self._password_checks, keys.administrator_sign_in_attempts(login),
            login, password, self._administrators.for_sign_in,
        )  # fmt: skip
        expires_at = int(self._clock()) + self._token_lifetime_seconds
        token = credentials.issue_administrator_token(
            self._token_key,
            credentials.AdministratorClaims(
                administrator.business_id,
                administrator.administrator_id,
                expires_at,
                administrator.credential_stamp,
            ),
        )
        return token, expires_at, administrator

    async def authenticate(self, credential: str) -> AdministratorContext:
        if not credential:
            raise Unauthenticated(
                "send 'authorization: Bearer <token or administrator API key>'",
                reason="CREDENTIALS_MISSING",
            )
        if credential.startswith(credentials.api_key_prefix):
            digest = credentials.api_key_digest(credential)
            return await _cached(
                self._cache, digest, lambda: self._administrators.by_api_key(digest),
                Unauthenticated(_unknown_key("administrator"), reason="API_KEY_INVALID"),
            )  # fmt: skip
        claims = credentials.verify_administrator_token(self._token_key, credential, self._clock())
        administrator = await _cached(
            self._cache, (claims.business_id, claims.administrator_id),
            lambda: self._administrators.by_id(claims.business_id, claims.administrator_id),
            Unauthenticated("the administrator no longer exists", reason="TOKEN_INVALID"),
        )  # fmt: skip
        if not hmac.compare_digest(claims.credential_stamp, administrator.credential_stamp):
            raise Unauthenticated(
                "the password changed after this token was issued; sign in again",
                reason="TOKEN_REVOKED",
            )
        return administrator
