"""What a Redis Cluster requires of Purse's keys and scripts: every key of a business in
one slot, and every script touching only the keys it is given (a cluster sends a script
to the node serving its keys' slot; a key built inside it is not routed, and is refused
or read from the wrong node while slots move)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from purse.store.redis import balance_cache, keys, pins, rate_limits, steward_codes

_modules = (balance_cache, pins, rate_limits, steward_codes)
_scripts = {
    f"{module.__name__}.{name}": text
    for module in _modules
    for name, text in vars(module).items()
    if name.endswith("_script") and isinstance(text, str)
}
# Commands a script may call without naming a key.
_keyless_commands = frozenset({"TIME"})
_call = re.compile(r"redis\.p?call\(\s*'(\w+)'\s*(?:,\s*([^,)]+))?")
_given_key = re.compile(r"KEYS\[[^\]]+\]")


def keys_not_given(script: str) -> list[str]:
    """The calls of `script` whose key is not one of KEYS, as `COMMAND argument`."""
    calls = _call.findall(script)
    assert calls, "a script that calls nothing"
    return [
        f"{command} {key.strip()}"
        for command, key in calls
        if command.upper() not in _keyless_commands and not _given_key.fullmatch(key.strip())
    ]


def test_every_script_of_the_stores_is_checked() -> None:
    assert len(_scripts) == 8
    assert all(module.__name__ in " ".join(_scripts) for module in _modules)


@pytest.mark.parametrize("name", sorted(_scripts))
def test_a_script_touches_only_the_keys_it_is_given(name: str) -> None:
    assert keys_not_given(_scripts[name]) == []


def test_a_key_built_inside_a_script_is_found() -> None:
    built = """
    local customer = redis.call('GET', KEYS[2])
    local value_key = ARGV[1] .. customer
    return redis.call('GET', value_key)
    """
    assert keys_not_given(built) == ["GET value_key"]


@given(st.integers(1, 2**62), st.integers(1, 2**62), st.text(max_size=20))
def test_every_key_of_a_business_is_in_the_slot_of_its_tag(
    business_id: int, other_id: int, text: str
) -> None:
    business_keys = (
        keys.steward_code(business_id, text),
        keys.steward_code_guesses(business_id, other_id),
        keys.pin(business_id, other_id),
        keys.pin_sends(business_id, text),
        keys.membership(business_id, other_id),
        keys.membership_changed(business_id, other_id),
        keys.membership_clock(business_id),
        keys.customer_by(business_id, "phone", text),
    )
    slots = {key_slot(key.encode()) for key in business_keys}
    assert slots == {key_slot(keys.business_tag(business_id).encode())}
