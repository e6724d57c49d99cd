"""Sealing short secrets at rest: a PIN waits in the outbox, sealed, until it is sent.

Contract: `sealing_key(instance_secret, purpose)` derives a separate 256-bit key per
purpose with HKDF-SHA256 (the purpose is HKDF's `info`), so a key for one kind of sealed
data never opens another. `seal(key, secret)` encrypts with AES-256-GCM (an AEAD from the
`cryptography` library) under a fresh random 96-bit nonce and returns
`version || nonce || ciphertext || tag`; `unseal(key, sealed)` returns the secret or
raises ValueError when the data was altered or the key is wrong. The leading version
byte names the format: data sealed before it existed (the hand-made HMAC-CTR format of
Purse 0.1, no version byte) raises `SealedByOlderVersion`, a ValueError, so a reader
can say why it cannot open it rather than merely that it failed. Those are PINs of at
most a hold's lifetime; the dispatcher fails such a message with its own reason and the
cashier resends the code (a fresh PIN, sealed in the current format).
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

sealing_version = 2
sealing_key_bytes = 32
sealing_nonce_bytes = 12
sealing_tag_bytes = 16
_associated_data = b"purse sealed secret v2"


class SealedByOlderVersion(ValueError):
    """Sealed in a format this version no longer reads."""


def sealing_key(instance_secret: bytes, purpose: str) -> bytes:
    """The AES-256-GCM key for `purpose`, derived from the instance secret with HKDF."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=sealing_key_bytes,
        salt=None,
        info=f"purse seal {purpose}".encode(),
    ).derive(instance_secret)


def seal(key: bytes, secret: str) -> bytes:
    """`secret` encrypted and authenticated under `key`; never the same bytes twice."""
    nonce = secrets.token_bytes(sealing_nonce_bytes)
    cipher = AESGCM(key).encrypt(nonce, secret.encode(), _associated_data)
    return bytes([sealing_version]) + nonce + cipher


def unseal(key: bytes, sealed: bytes) -> str:
    """The secret `seal` sealed; SealedByOlderVersion for the old format, ValueError when
    the data was altered, truncated or sealed under another key."""
    if not sealed or sealed[0] != sealing_version:
        raise SealedByOlderVersion("sealed by an older version of Purse")
    if len(sealed) < 1 + sealing_nonce_bytes + sealing_tag_bytes:
        raise ValueError("sealed data is truncated")
    nonce = sealed[1 : 1 + sealing_nonce_bytes]
    try:
        plain = AESGCM(key).decrypt(nonce, sealed[1 + sealing_nonce_bytes :], _associated_data)
    except InvalidTag as error:
        raise ValueError("sealed data does not verify") from error
    return plain.decode()
