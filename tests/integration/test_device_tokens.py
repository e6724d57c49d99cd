"""Push device tokens on a real PostgreSQL: register, refresh, move, revoke, and the limit
per customer."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from support import Tenant, new_phone

from purse.domain.customers import AccessType
from purse.store.postgres.customers import CustomerStore
from purse.store.postgres.device_tokens import DeviceTokenStore, Platform


async def member(pool: asyncpg.Pool, business: Tenant) -> int:
    customer_id, _ = await CustomerStore(pool).enrol(
        business.business_id, new_phone(), AccessType.FULL
    )
    return customer_id


async def live_tokens(store: DeviceTokenStore, business: Tenant, customer_id: int) -> list[str]:
    return [device.token for device in await store.live(business.business_id, customer_id)]


async def test_a_registered_token_is_live_and_registering_it_again_refreshes_it(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    store = DeviceTokenStore(pool)
    customer_id = await member(pool, business)
    assert await store.register(business.business_id, customer_id, "ios-1", Platform.IOS)
    [first] = await store.live(business.business_id, customer_id)
    assert await store.register(business.business_id, customer_id, "ios-1", Platform.IOS)
    [again] = await store.live(business.business_id, customer_id)
    assert (again.token, again.platform) == ("ios-1", Platform.IOS)
    assert again.created_at == first.created_at
    assert again.last_seen_at > first.last_seen_at


async def test_a_token_of_someone_who_is_not_a_member_is_not_registered(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    store = DeviceTokenStore(pool)
    stranger = -1
    assert not await store.register(business.business_id, stranger, "web-1", Platform.WEB)
    assert await live_tokens(store, business, stranger) == []


async def test_a_token_registered_by_another_customer_moves_to_them(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    store = DeviceTokenStore(pool)
    before, after = await member(pool, business), await member(pool, business)
    await store.register(business.business_id, before, "shared", Platform.ANDROID)
    await store.register(business.business_id, after, "shared", Platform.ANDROID)
    assert await live_tokens(store, business, before) == []
    assert await live_tokens(store, business, after) == ["shared"]


async def test_a_revoked_token_is_no_longer_live_until_registered_again(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    store = DeviceTokenStore(pool)
    customer_id = await member(pool, business)
    await store.register(business.business_id, customer_id, "a", Platform.IOS)
    await store.register(business.business_id, customer_id, "b", Platform.IOS)
    assert await store.revoke(business.business_id, customer_id, "a")
    assert not await store.revoke(business.business_id, customer_id, "a")
    assert await live_tokens(store, business, customer_id) == ["b"]
    assert await store.revoke_unregistered(business.business_id, ["b", "unknown"]) == 1
    assert await live_tokens(store, business, customer_id) == []
    await store.register(business.business_id, customer_id, "a", Platform.IOS)
    assert await live_tokens(store, business, customer_id) == ["a"]


async def test_registrations_past_the_limit_revoke_the_tokens_seen_longest_ago(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    store = DeviceTokenStore(pool, tokens_per_customer_max=2)
    customer_id = await member(pool, business)
    for token in ("oldest", "older", "newest"):
        await store.register(business.business_id, customer_id, token, Platform.ANDROID)
    assert await live_tokens(store, business, customer_id) == ["newest", "older"]


async def test_concurrent_registrations_never_leave_more_live_tokens_than_the_limit(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    limit = 3
    store = DeviceTokenStore(pool, tokens_per_customer_max=limit)
    customer_id = await member(pool, business)
    await asyncio.gather(
        *(
            store.register(business.business_id, customer_id, f"device-{number}", Platform.WEB)
            for number in range(12)
        )
    )
    assert len(await live_tokens(store, business, customer_id)) == limit


async def test_a_token_longer_than_the_limit_is_refused(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    customer_id = await member(pool, business)
    with pytest.raises(ValueError, match="device token"):
        await DeviceTokenStore(pool).register(
            business.business_id, customer_id, "x" * 4097, Platform.WEB
        )
