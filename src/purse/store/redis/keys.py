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


def sign_in_failures(login: str) -> str:
    # The login is hashed: keys may show up in monitoring, logins should not.
    digest = hashlib.sha256(login.encode()).hexdigest()[:32]
    return f"{{login{digest}}}:sign-in-failures"


def pin(business_id: int, transaction_id: int) -> str:
    return f"{business_tag(business_id)}:pin:{transaction_id}"


def pin_sends(business_id: int, phone: str) -> str:
    return f"{business_tag(business_id)}:pin-sends:{phone}"
