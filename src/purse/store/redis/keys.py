"""Every Redis key in one place, hash-tagged by business so Redis Cluster works unchanged.

A key of business 42 starts with `{b42}`: all keys of one business live in one slot, so
multi-key scripts of one business stay legal in a cluster. Keys that belong to no
business yet (a sign-in for a login nobody has) are tagged by what they are about.
"""

from __future__ import annotations

import hashlib


def business_tag(business_id: int) -> str:
    return f"{{b{business_id}}}"


def steward_code(business_id: int, code: str) -> str:
    return f"{business_tag(business_id)}:steward:{code}"


def _hidden(text: str) -> str:
    """A digest standing for a login or phone: keys show up in monitoring, they should not."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def sign_in_attempts(login: str) -> str:
    return f"{{login{_hidden(login)}}}:sign-in-attempts"


def administrator_sign_in_attempts(login: str) -> str:
    return f"{{admin-login{_hidden(login)}}}:sign-in-attempts"


def steward_code_guesses(business_id: int, terminal_id: int) -> str:
    return f"{business_tag(business_id)}:steward-guesses:{terminal_id}"


def pin(business_id: int, transaction_id: int) -> str:
    return f"{business_tag(business_id)}:pin:{transaction_id}"


def pin_sends(business_id: int, phone: str) -> str:
    return f"{business_tag(business_id)}:pin-sends:{_hidden(phone)}"


def membership(business_id: int, customer_id: int) -> str:
    return f"{business_tag(business_id)}:membership:{customer_id}"


def membership_changed(business_id: int, customer_id: int) -> str:
    return f"{business_tag(business_id)}:membership-changed:{customer_id}"


def membership_clock(business_id: int) -> str:
    return f"{business_tag(business_id)}:membership-clock"


def customer_by(business_id: int, kind: str, value: str) -> str:
    return f"{business_tag(business_id)}:customer-by:{_hidden(f'{kind}:{value}')}"
