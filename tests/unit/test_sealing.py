"""Sealed secrets: AES-GCM under a key per purpose, and the format of Purse 0.1 refused
by name."""

from __future__ import annotations

import pytest
from support import sealed_by_purse_0_1

from purse import sealing

instance_secret = b"s" * 32
key = sealing.sealing_key(instance_secret, "outbox-pin")


def test_a_sealed_secret_opens_only_with_its_key_and_unaltered() -> None:
    sealed = sealing.seal(key, "482913")
    assert b"482913" not in sealed
    assert sealing.unseal(key, sealed) == "482913"
    assert sealing.seal(key, "482913") != sealed
    with pytest.raises(ValueError, match="does not verify"):
        sealing.unseal(sealing.sealing_key(b"o" * 32, "outbox-pin"), sealed)
    with pytest.raises(ValueError, match="does not verify"):
        sealing.unseal(key, sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(ValueError, match="truncated"):
        sealing.unseal(key, sealed[:5])


def test_each_purpose_has_its_own_key() -> None:
    other = sealing.sealing_key(instance_secret, "another-purpose")
    assert other != key and len(key) == 32
    with pytest.raises(ValueError):
        sealing.unseal(other, sealing.seal(key, "482913"))


def test_a_secret_sealed_by_the_old_format_is_refused_as_older_not_as_altered() -> None:
    old = sealed_by_purse_0_1(b"k" * 32, "482913")
    with pytest.raises(sealing.SealedByOlderVersion):
        sealing.unseal(key, old)
