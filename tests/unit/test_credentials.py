"""Password hashes, API keys and signed tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

import pytest

from purse.domain import credentials
from purse.domain.errors import FailedPrecondition, InvalidArgument, Unauthenticated

key = credentials.derive_key(b"s" * 32, "terminal-token")
other_key = credentials.derive_key(b"s" * 32, "app-token")


def test_a_password_verifies_against_its_hash_and_nothing_else() -> None:
    stored = credentials.hash_password("open sesame")
    assert stored.startswith("scrypt$")
    assert "open sesame" not in stored
    assert credentials.verify_password("open sesame", stored)
    assert not credentials.verify_password("open sesame!", stored)
    assert not credentials.verify_password("open sesame", "garbage")


def test_two_hashes_of_one_password_differ_by_their_salt() -> None:
    assert credentials.hash_password("same") != credentials.hash_password("same")


def test_api_keys_are_random_and_stored_as_a_32_byte_digest() -> None:
    first, second = credentials.new_api_key(), credentials.new_api_key()
    assert first != second
    assert first.startswith(credentials.api_key_prefix)
    assert len(credentials.api_key_digest(first)) == 32


def test_a_terminal_token_carries_its_claims_until_it_expires() -> None:
    claims = credentials.TerminalClaims(7, 11, 1_000)
    token = credentials.issue_terminal_token(key, claims)
    assert credentials.verify_terminal_token(key, token, 999) == claims
    with pytest.raises(Unauthenticated) as expired:
        credentials.verify_terminal_token(key, token, 1_000)
    assert expired.value.reason == "TOKEN_EXPIRED"


def test_a_token_from_before_stamps_is_answered_as_expired_so_clients_sign_in_again() -> None:
    payload = struct.pack(">QQQ", 7, 11, 10_000)
    signature = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    old = credentials.terminal_token_prefix + base64.urlsafe_b64encode(
        payload + signature
    ).decode().rstrip("=")
    with pytest.raises(Unauthenticated) as refused:
        credentials.verify_terminal_token(key, old, 0)
    assert refused.value.reason == "TOKEN_EXPIRED"


def test_a_token_carries_the_stamp_of_the_password_it_was_issued_for() -> None:
    claims = credentials.TerminalClaims(7, 11, 1_000, b"stamp-01")
    token = credentials.issue_terminal_token(key, claims)
    assert credentials.verify_terminal_token(key, token, 0).credential_stamp == b"stamp-01"


def test_a_token_signed_with_another_key_or_altered_is_refused() -> None:
    token = credentials.issue_terminal_token(key, credentials.TerminalClaims(7, 11, 1_000))
    with pytest.raises(Unauthenticated):
        credentials.verify_terminal_token(other_key, token, 0)
    altered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for bad in (altered, token[:-5], "purse_tt_!!!", "nonsense"):
        with pytest.raises(Unauthenticated) as refused:
            credentials.verify_terminal_token(key, bad, 0)
        assert refused.value.reason == "TOKEN_INVALID"


def test_an_app_token_names_its_customer_for_two_rotation_windows() -> None:
    token = credentials.issue_app_token(other_key, 42, now_seconds=300, window_seconds=30)
    assert credentials.verify_app_token(other_key, token, 300, 30) == 42
    assert credentials.verify_app_token(other_key, token, 359, 30) == 42
    with pytest.raises(FailedPrecondition) as stale:
        credentials.verify_app_token(other_key, token, 360, 30)
    assert stale.value.reason == "APP_TOKEN_EXPIRED"


def test_a_forged_app_token_is_bad_input() -> None:
    token = credentials.issue_app_token(key, 42, now_seconds=300, window_seconds=30)
    with pytest.raises(InvalidArgument) as forged:
        credentials.verify_app_token(other_key, token, 300, 30, field="identifier.app_token")
    assert forged.value.reason == "APP_TOKEN_INVALID"
    assert forged.value.violations[0].field == "identifier.app_token"
