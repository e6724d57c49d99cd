"""A cached membership decodes to exactly what was encoded, to the microsecond."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from purse.domain.customers import AccessType, Membership, Pocket, PocketKind
from purse.store.redis.balance_cache import decode, encode

moments = st.none() | st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
amounts = st.integers(min_value=-(10**15), max_value=10**15)
pockets = st.builds(
    Pocket,
    pocket_id=st.integers(1, 2**62),
    kind=st.sampled_from(PocketKind),
    account_type_id=st.integers(0, 2**31),
    title=st.text(max_size=20),
    balance=amounts,
    held=amounts,
    redemption_limit_without_pin=st.none() | amounts,
    expiring=amounts,
    next_expiry=moments,
)
memberships = st.builds(
    Membership,
    customer_id=st.integers(1, 2**62),
    phone=st.text(max_size=16),
    category_id=st.integers(1, 2**31),
    category_title=st.text(max_size=20),
    access_type=st.sampled_from(AccessType),
    participation_confirmed=st.booleans(),
    pockets=st.lists(pockets, max_size=4).map(tuple),
    sales_count=st.integers(0, 2**40),
    sales_sum_minor_units=amounts,
    last_visit=moments,
    given_name=st.text(max_size=20),
    family_name=st.text(max_size=20),
    language=st.sampled_from(["", "en", "uk", "ru"]),
)


@given(memberships)
def test_a_membership_survives_the_cache_unchanged(membership: Membership) -> None:
    assert decode(encode(membership)) == membership
