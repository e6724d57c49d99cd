"""Terminal authentication: sign-in with login and password, bearer tokens, API keys.

Sign-in verifies the scrypt hash off the event loop, counts failures per login in Redis
(too many → RateLimited before any hash is computed) and answers unknown logins in the
same time as known ones. Every later call presents a token (verified by signature, no
database) or an API key (found by its SHA-256); the terminal it resolves to is cached
for `cache_seconds`, so disabling a terminal takes effect within that time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from purse.domain import credentials
from purse.domain.errors import PermissionDenied, RateLimited, Unauthenticated, invalid
from purse.domain.terminals import AdministratorContext, TerminalContext
from purse.service.cache import ExpiringCache
from purse.store.postgres.administrators import AdministratorStore
from purse.store.postgres.terminals import TerminalStore
from purse.store.redis import keys
from purse.store.redis.rate_limits import FailureCounter

login_characters_max = 64
password_characters_max = 256


class Authenticator:
    """Turns credentials into a TerminalContext, or refuses."""

    def __init__(
        self,
        terminals: TerminalStore,
        failures: FailureCounter,
        token_key: bytes,
        token_lifetime_seconds: int,
        cache_seconds: float,
        cache_entries_max: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._terminals = terminals
        self._failures = failures
        self._token_key = token_key
        self._token_lifetime_seconds = token_lifetime_seconds
        self._clock = clock
        self._cache: ExpiringCache[TerminalContext] = ExpiringCache(
            cache_seconds, cache_entries_max
        )

    async def sign_in(self, login: str, password: str) -> tuple[str, int, TerminalContext]:
        """(token, expiry in Unix seconds, terminal)."""
        if not login or len(login) > login_characters_max:
            raise invalid("login", f"a login has 1 to {login_characters_max} characters")
        if not password or len(password) > password_characters_max:
            raise invalid("password", f"a password has 1 to {password_characters_max} characters")
        failure_key = keys.sign_in_failures(login)
        retry_after = await self._failures.retry_after_seconds(failure_key)
        if retry_after:
            raise RateLimited(
                "too many wrong passwords for this login; try again later",
                reason="SIGN_IN_RATE_LIMITED",
                retry_after_seconds=retry_after,
            )
        found = await self._terminals.for_sign_in(login)
        stored_hash = found[1] if found else credentials.UNKNOWN_LOGIN_HASH
        matches = await asyncio.to_thread(credentials.verify_password, password, stored_hash)
        if found is None or not matches:
            await self._failures.record_failure(failure_key)
            raise Unauthenticated("wrong login or password", reason="WRONG_CREDENTIALS")
        await self._failures.clear(failure_key)
        terminal = _enabled(found[0])
        expires_at = int(self._clock()) + self._token_lifetime_seconds
        token = credentials.issue_terminal_token(
            self._token_key,
            credentials.TerminalClaims(terminal.business_id, terminal.terminal_id, expires_at),
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
            terminal = self._cache.get(digest)
            if terminal is None:
                terminal = await self._terminals.by_api_key(digest)
                if terminal is None:
                    raise Unauthenticated("unknown or revoked API key", reason="API_KEY_INVALID")
                self._cache.put(digest, terminal)
            return _enabled(terminal)
        claims = credentials.verify_terminal_token(self._token_key, credential, self._clock())
        cache_key = (claims.business_id, claims.terminal_id)
        terminal = self._cache.get(cache_key)
        if terminal is None:
            terminal = await self._terminals.by_id(claims.business_id, claims.terminal_id)
            if terminal is None:
                raise Unauthenticated("the terminal no longer exists", reason="TOKEN_INVALID")
            self._cache.put(cache_key, terminal)
        return _enabled(terminal)


def _enabled(terminal: TerminalContext) -> TerminalContext:
    if not terminal.enabled:
        raise PermissionDenied("this terminal is disabled", reason="TERMINAL_DISABLED")
    return terminal


class AdministratorAuthenticator:
    """Turns an administrator's API key into the business it speaks for."""

    def __init__(
        self, administrators: AdministratorStore, cache_seconds: float, cache_entries_max: int
    ) -> None:
        self._administrators = administrators
        self._cache: ExpiringCache[AdministratorContext] = ExpiringCache(
            cache_seconds, cache_entries_max
        )

    async def authenticate(self, credential: str) -> AdministratorContext:
        if not credential.startswith(credentials.api_key_prefix):
            raise Unauthenticated(
                "send 'authorization: Bearer <administrator API key>'",
                reason="CREDENTIALS_MISSING",
            )
        digest = credentials.api_key_digest(credential)
        administrator = self._cache.get(digest)
        if administrator is None:
            administrator = await self._administrators.by_api_key(digest)
            if administrator is None:
                raise Unauthenticated("unknown or revoked API key", reason="API_KEY_INVALID")
            self._cache.put(digest, administrator)
        return administrator
