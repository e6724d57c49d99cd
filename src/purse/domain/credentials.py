"""Secrets: password hashing, API keys, and signed short-lived tokens.

Passwords are hashed with scrypt (memory-hard, stdlib) and a random salt; API keys are
256-bit random strings stored as SHA-256 (their entropy makes a slow hash pointless and
a fast one lets each call find its key by index). Tokens are HMAC-SHA256-signed and carry
their own expiry, so verifying one needs no database. Every comparison of secrets is
constant-time. Nothing here logs or stores a secret in plain text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass

from purse.domain.errors import FailedPrecondition, Unauthenticated, invalid

scrypt_cost = 2**14
scrypt_block_size = 8
scrypt_parallelism = 1
scrypt_salt_bytes = 16
scrypt_hash_bytes = 32
api_key_random_bytes = 32
api_key_prefix = "purse_key_"
terminal_token_prefix = "purse_tt_"
administrator_token_prefix = "purse_at_"
app_token_prefix = "P1"
_signature_bytes = 16
# business id, terminal id, expiry (s), the stamp of the password it was issued for
_terminal_token_layout = struct.Struct(">QQQ8s")
# Tokens issued before they carried a stamp: answered as expired, so clients sign in again.
_stampless_token_layout = struct.Struct(">QQQ")
_app_token_layout = struct.Struct(">QQ")  # customer id, rotation window number


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$n$r$p$salt$hash`, every parameter stored so it can be raised later."""
    salt = salt if salt is not None else secrets.token_bytes(scrypt_salt_bytes)
    digest = hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=scrypt_cost,
        r=scrypt_block_size,
        p=scrypt_parallelism,
        dklen=scrypt_hash_bytes,
    )
    return (
        f"scrypt${scrypt_cost}${scrypt_block_size}${scrypt_parallelism}${_b64(salt)}${_b64(digest)}"
    )


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against a `hash_password` result."""
    try:
        scheme, cost, block_size, parallelism, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=int(cost),
            r=int(block_size),
            p=int(parallelism),
            dklen=len(_unb64(expected)),
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest, _unb64(expected))


# A hash that never matches, verified for unknown logins so that timing does not tell
# whether a login exists.
UNKNOWN_LOGIN_HASH = hash_password(secrets.token_urlsafe(16), salt=b"\0" * scrypt_salt_bytes)


def new_api_key() -> str:
    """A fresh terminal API key (shown once, stored only as `api_key_digest`)."""
    return api_key_prefix + _b64(secrets.token_bytes(api_key_random_bytes))


def api_key_digest(api_key: str) -> bytes:
    """What the database stores and looks up for an API key."""
    return hashlib.sha256(api_key.encode()).digest()


def derive_key(instance_secret: bytes, purpose: str) -> bytes:
    """A separate signing key per purpose, so one kind of token never passes for another.

    HMAC-SHA256 keyed by the instance secret (32 random bytes) over the purpose: a PRF of a
    uniformly random key, as HKDF's expand step is for a one-block output. Changing it would
    invalidate every token in circulation, so it stays; keys for encryption come from
    `purse.sealing.sealing_key` (HKDF from the `cryptography` library)."""
    return hmac.new(instance_secret, purpose.encode(), hashlib.sha256).digest()


def _sign(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_signature_bytes]


@dataclass(frozen=True, slots=True)
class TerminalClaims:
    """Who a terminal token speaks for, and until when."""

    business_id: int
    terminal_id: int
    expires_at_seconds: int
    # Changes whenever the terminal's password does: a token of the old one is refused.
    credential_stamp: bytes = bytes(8)


def _issue(
    prefix: str, key: bytes, owner_id: int, subject_id: int, expires_at: int, stamp: bytes
) -> str:
    payload = _terminal_token_layout.pack(owner_id, subject_id, expires_at, stamp)
    return prefix + _b64(payload + _sign(key, payload))


def _verify(
    prefix: str, key: bytes, token: str, now_seconds: float, what: str
) -> tuple[int, int, int, bytes]:
    """(business id, subject id, expiry, stamp) of a token; Unauthenticated if forged,
    malformed or expired."""
    if not token.startswith(prefix):
        raise Unauthenticated(f"not {what} token", reason="TOKEN_INVALID")
    try:
        raw = _unb64(token[len(prefix) :])
    except ValueError as error:
        raise Unauthenticated("malformed token", reason="TOKEN_INVALID") from error
    if len(raw) == _stampless_token_layout.size + _signature_bytes:
        raise Unauthenticated(
            "a token from an older release; sign in again", reason="TOKEN_EXPIRED"
        )
    if len(raw) != _terminal_token_layout.size + _signature_bytes:
        raise Unauthenticated("malformed token", reason="TOKEN_INVALID")
    payload, signature = raw[: _terminal_token_layout.size], raw[_terminal_token_layout.size :]
    if not hmac.compare_digest(signature, _sign(key, payload)):
        raise Unauthenticated("token signature does not match", reason="TOKEN_INVALID")
    business_id, subject_id, expires_at, stamp = _terminal_token_layout.unpack(payload)
    if now_seconds >= expires_at:
        raise Unauthenticated("token expired; sign in again", reason="TOKEN_EXPIRED")
    return business_id, subject_id, expires_at, stamp


def issue_terminal_token(key: bytes, claims: TerminalClaims) -> str:
    return _issue(
        terminal_token_prefix, key, claims.business_id, claims.terminal_id,
        claims.expires_at_seconds, claims.credential_stamp,
    )  # fmt: skip


def verify_terminal_token(key: bytes, token: str, now_seconds: float) -> TerminalClaims:
    """The token's claims; Unauthenticated if forged, malformed or expired."""
    return TerminalClaims(*_verify(terminal_token_prefix, key, token, now_seconds, "a terminal"))


@dataclass(frozen=True, slots=True)
class AdministratorClaims:
    """Who an administrator token speaks for, and until when."""

    business_id: int
    administrator_id: int
    expires_at_seconds: int
    # Changes whenever the administrator's password does: a token of the old one is refused.
    credential_stamp: bytes


def issue_administrator_token(key: bytes, claims: AdministratorClaims) -> str:
    """Signed with a key of its own purpose: a terminal token never passes for one."""
    return _issue(
        administrator_token_prefix, key, claims.business_id, claims.administrator_id,
        claims.expires_at_seconds, claims.credential_stamp,
    )  # fmt: skip


def verify_administrator_token(key: bytes, token: str, now_seconds: float) -> AdministratorClaims:
    """The token's claims; Unauthenticated if forged, malformed or expired."""
    return AdministratorClaims(
        *_verify(administrator_token_prefix, key, token, now_seconds, "an administrator")
    )


def issue_app_token(key: bytes, customer_id: int, now_seconds: float, window_seconds: int) -> str:
    """The rotating QR token the customer app shows; changes every `window_seconds`."""
    window = int(now_seconds // window_seconds)
    payload = _app_token_layout.pack(customer_id, window)
    return app_token_prefix + _b64(payload + _sign(key, payload))


def verify_app_token(
    key: bytes, token: str, now_seconds: float, window_seconds: int, field: str = "app_token"
) -> int:
    """The customer id in a current app token (this rotation window or the one before).

    A forged or malformed token is bad input (InvalidArgument, APP_TOKEN_INVALID); a
    genuine but stale one is refused with FailedPrecondition, APP_TOKEN_EXPIRED.
    """
    if not token.startswith(app_token_prefix):
        raise invalid(field, "not a Purse app token", "APP_TOKEN_INVALID")
    try:
        raw = _unb64(token[len(app_token_prefix) :])
    except ValueError as error:
        raise invalid(field, "malformed app token", "APP_TOKEN_INVALID") from error
    if len(raw) != _app_token_layout.size + _signature_bytes:
        raise invalid(field, "malformed app token", "APP_TOKEN_INVALID")
    payload, signature = raw[: _app_token_layout.size], raw[_app_token_layout.size :]
    if not hmac.compare_digest(signature, _sign(key, payload)):
        raise invalid(field, "app token signature does not match", "APP_TOKEN_INVALID")
    customer_id, window = _app_token_layout.unpack(payload)
    current = int(now_seconds // window_seconds)
    # The previous window is accepted too: a token scanned just as it rotates still works.
    if window not in (current, current - 1):
        raise FailedPrecondition(
            "the app QR code has expired; ask the customer to refresh it",
            reason="APP_TOKEN_EXPIRED",
        )
    return int(customer_id)
