"""The balance cache: identification answered from Redis, never newer writes undone.

What is cached is a membership as identification shows it (statistics, every pocket with
its balance, held and expiring amounts), under `{b<business>}:membership:<customer>`,
plus hints from a phone or card to the customer. Nothing is shared between businesses:
every key carries its business's hash tag, a value is that business's membership alone
(the names and language that business collected included), and a hint holds only a
customer id. PostgreSQL stays authoritative: only the read-only calls (IdentifyCustomer,
CalculateCheck) use the cache; ProcessCheck reads the database, and its settlement locks
the pockets anyway.

Staleness is ruled out by a per-business clock, not by timing:
- every write path calls `forget` after its commit: the clock ticks, each customer gets a
  "changed at tick" marker, and the cached value is deleted;
- a reader notes the clock before its database read (`lookup`), and `remember` stores the
  value only if no marker is newer than that note. A write that committed after the
  reader's note therefore always either refuses the fill or deletes it;
- the clock carries a random epoch that every cached value repeats. Losing Redis (flush,
  restart, eviction) changes the epoch, which refuses fills begun before and hides values
  written before. (Changing the epoch on purpose hides a whole business's values: the
  way for future control-panel paths that change category or account type titles.)

Redis is disposable: a failing or slow (`timeout_seconds`) lookup is a miss, a failing
remember is skipped, and a failing forget is logged and counted; values live at most
`lifetime_seconds`, which bounds what a forget lost to an outage can leave behind. A
value never outlives the soonest expiry of its special points either.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter

from purse.domain.customers import AccessType, Membership, Pocket, PocketKind
from purse.service.cache import ExpiringCache
from purse.store.redis import keys
from purse.store.redis.client import RedisClient

_logger = logging.getLogger(__name__)

# A reader whose database read took longer than this does not fill: its note could
# predate markers that have already expired.
fill_seconds_max = 10.0
# Markers must outlive every fill that may still be running.
changed_marker_seconds = 60
assert changed_marker_seconds > fill_seconds_max * 2
# Hints whose customer a process remembers (a few hundred bytes each).
hints_remembered_max = 20_000

# KEYS[1] the business's clock; KEYS[2] what is read: a membership, or a hint (its value
# is a customer id); KEYS[3], when reading a membership found through a hint, that hint,
# which must still name that customer (ARGV[2]), else nothing is read: the customer came
# from an earlier call (or this process's memory of one), and a change may have moved the
# hint since. The fourth answer is what the hint names now. Every key is given, none
# built here: a script may touch only the keys it declares (in a cluster, they are what
# routes it to its slot's node).
_lookup_script = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
  redis.call('HSETNX', KEYS[1], 'tick', 0)
end
local tick = redis.call('HGET', KEYS[1], 'tick')
if not KEYS[3] then return {epoch, tick, redis.call('GET', KEYS[2]) or '', ''} end
local named = redis.call('GET', KEYS[3]) or ''
if named ~= ARGV[2] then return {epoch, tick, '', named} end
return {epoch, tick, redis.call('GET', KEYS[2]) or '', named}
"""

_remember_script = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
local changed = redis.call('GET', KEYS[3])
if changed and tonumber(changed) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
if KEYS[4] then redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[4]) end
return 1
"""

_forget_script = """
local customers = tonumber(ARGV[1])
local tick = redis.call('HINCRBY', KEYS[1], 'tick', 1)
for i = 2, customers + 1 do
  redis.call('DEL', KEYS[i])
  redis.call('SET', KEYS[i + customers], tick, 'EX', ARGV[2])
end
for i = 2 * customers + 2, #KEYS do redis.call('DEL', KEYS[i]) end
return tick
"""


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a miss hands to `remember`: the clock as it was before the database read."""

    epoch: bytes
    tick: int
    started: float


@dataclass(frozen=True, slots=True)
class Lookup:
    membership: Membership | None
    ticket: Ticket | None


def hint(kind: str, value: str) -> str:
    """How a customer is looked up without the id: ("phone", "+7999…"), ("card_number", …)."""
    return f"{kind}:{value}"


class BalanceCache:
    """Memberships of every business, by customer, with the rules above."""

    def __init__(
        self,
        client: RedisClient,
        lifetime_seconds: int,
        timeout_seconds: float,
        registry: CollectorRegistry | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> None:
        assert lifetime_seconds > 0
        self._lifetime_seconds = lifetime_seconds
        self._timeout_seconds = timeout_seconds
        self._monotonic = monotonic
        self._now = now
        self._lookup = client.register_script(_lookup_script)
        # The customer each hint named when last read here: a lookup by a hint it holds
        # takes one call instead of two (the call checks the hint still names them).
        self._hinted: ExpiringCache[bytes] = ExpiringCache(lifetime_seconds, hints_remembered_max)
        self._remember = client.register_script(_remember_script)
        self._forget = client.register_script(_forget_script)
        self._lookups = Counter(
            "purse_balance_cache_lookups",
            "Identifications looked up in the balance cache, by result",
            ["result"],
            registry=registry,
        )
        self._hits = self._lookups.labels("hit")
        self._misses = self._lookups.labels("miss")
        self._lookup_errors = self._lookups.labels("error")
        self._forget_errors = Counter(
            "purse_balance_cache_forget_errors",
            "Forgets after a commit that did not reach Redis (values may stay until expiry)",
            registry=registry,
        )

    async def lookup(self, business_id: int, by: str | int) -> Lookup:
        """The cached membership (by customer id or by a `hint`), or a ticket to fill it."""
        started = self._monotonic()
        try:
            epoch, tick, value = await asyncio.wait_for(
                self._read(business_id, by), self._timeout_seconds
            )
        # Whatever went wrong (Redis away or slow), the database answers: the cache must
        # never fail an identification.
        except Exception as error:
            self._lookup_errors.inc()
            _logger.debug("balance cache lookup failed: %s", type(error).__name__)
            return Lookup(None, None)
        found = _decoded(value, epoch + b"|")
        if found is not None:
            self._hits.inc()
            return Lookup(found, None)
        self._misses.inc()
        return Lookup(None, Ticket(epoch, int(tick), started))

    async def _read(self, business_id: int, by: str | int) -> tuple[bytes, bytes, bytes]:
        """(epoch, tick, value). By a hint: the customer it names, remembered by this
        process or read by a first call, then the value with the hint checked again (each
        call declares the keys it reads)."""
        clock = keys.membership_clock(business_id)
        token = secrets.token_hex(8)
        if isinstance(by, int):
            epoch, tick, value, _ = await self._lookup(
                keys=[clock, keys.membership(business_id, by)], args=[token]
            )
            return epoch, tick, value
        hint_key = _hint_key(business_id, by)
        customer = self._hinted.get(hint_key)
        if customer is None:
            epoch, tick, customer, _ = await self._lookup(keys=[clock, hint_key], args=[token])
            if not customer.isdigit():  # no hint (or a damaged one: the fill replaces it)
                return epoch, tick, b""
        epoch, tick, value, named = await self._lookup(
            keys=[clock, keys.membership(business_id, int(customer)), hint_key],
            args=[token, customer],
        )
        if named == customer:
            self._hinted.put(hint_key, customer)
        else:  # the hint moved or expired: read afresh next time
            self._hinted.pop(hint_key)
        return epoch, tick, value

    async def remember(
        self, business_id: int, membership: Membership, by: str | int, ticket: Ticket | None
    ) -> bool:
        """Store what the database said after a miss; False when a write came in between
        (or Redis failed: the next identification reads the database again)."""
        if ticket is None or self._monotonic() - ticket.started > fill_seconds_max:
            return False
        lifetime = _lifetime(membership, self._lifetime_seconds, self._now())
        if lifetime <= 0:
            return False
        customer_id = membership.customer_id
        cache_keys = [
            keys.membership_clock(business_id),
            keys.membership(business_id, customer_id),
            keys.membership_changed(business_id, customer_id),
        ]
        if isinstance(by, str):
            cache_keys.append(_hint_key(business_id, by))
        value = ticket.epoch + b"|" + encode(membership)
        try:
            stored = await asyncio.wait_for(
                self._remember(
                    keys=cache_keys, args=[ticket.epoch, ticket.tick, value, lifetime, customer_id]
                ),
                self._timeout_seconds,
            )
        except Exception:  # as for a lookup: the answer is already in hand
            return False
        if stored and isinstance(by, str):
            self._hinted.put(cache_keys[-1], str(customer_id).encode())
        return bool(stored)

    async def forget(
        self, business_id: int, customer_ids: Collection[int], hints: Collection[str] = ()
    ) -> None:
        """After a commit that changed these customers (or moved these hints): drop their
        values and refuse fills begun before now. Never raises."""
        if not customer_ids and not hints:
            return
        ordered = sorted(set(customer_ids))
        hint_keys = [_hint_key(business_id, each) for each in hints]
        for hint_key in hint_keys:
            self._hinted.pop(hint_key)
        cache_keys = [
            keys.membership_clock(business_id),
            *(keys.membership(business_id, customer) for customer in ordered),
            *(keys.membership_changed(business_id, customer) for customer in ordered),
            *hint_keys,
        ]
        try:
            await asyncio.wait_for(
                self._forget(keys=cache_keys, args=[len(ordered), changed_marker_seconds]),
                self._timeout_seconds,
            )
        # Never raises: the change it follows is committed, and its caller must answer so.
        except Exception as error:
            self._forget_errors.inc()
            _logger.warning(
                "the balance cache missed a change (%s); values expire within %d s",
                type(error).__name__,
                self._lifetime_seconds,
            )


def _decoded(value: bytes, prefix: bytes) -> Membership | None:
    """The membership in a value of the current epoch; None for anything else, a value
    that does not decode included (the fill after the miss replaces it)."""
    if not value.startswith(prefix):
        return None
    try:
        return decode(value[len(prefix) :])
    except (ValueError, TypeError):  # orjson.JSONDecodeError is a ValueError
        return None


def _hint_key(business_id: int, by: str) -> str:
    kind, _, value = by.partition(":")
    return keys.customer_by(business_id, kind, value)


def _lifetime(membership: Membership, lifetime_seconds: int, now: float) -> int:
    """Whole seconds the value may live: never past the soonest expiry of special points."""
    soonest = min(
        (pocket.next_expiry.timestamp() for pocket in membership.pockets if pocket.next_expiry),
        default=None,
    )
    if soonest is None:
        return lifetime_seconds
    return min(lifetime_seconds, int(soonest - now))


def encode(membership: Membership) -> bytes:
    """The membership as JSON (`newly_enrolled` is about one call, so it is not kept)."""
    return orjson.dumps(
        [
            membership.customer_id,
            membership.phone,
            membership.category_id,
            membership.category_title,
            membership.access_type.value,
            membership.participation_confirmed,
            membership.sales_count,
            membership.sales_sum_minor_units,
            _moment(membership.last_visit),
            membership.given_name,
            membership.family_name,
            membership.language,
            [_pocket(pocket) for pocket in membership.pockets],
        ]
    )


def decode(value: bytes) -> Membership:
    (
        customer_id,
        phone,
        category_id,
        category_title,
        access_type,
        participation_confirmed,
        sales_count,
        sales_sum,
        last_visit,
        given_name,
        family_name,
        language,
        pockets,
    ) = orjson.loads(value)
    return Membership(
        customer_id=customer_id,
        phone=phone,
        category_id=category_id,
        category_title=category_title,
        access_type=AccessType(access_type),
        participation_confirmed=participation_confirmed,
        pockets=tuple(_pocket_of(values) for values in pockets),
        sales_count=sales_count,
        sales_sum_minor_units=sales_sum,
        last_visit=_instant(last_visit),
        given_name=given_name,
        family_name=family_name,
        language=language,
    )


def _pocket(pocket: Pocket) -> list[Any]:
    return [
        pocket.pocket_id,
        pocket.kind.value,
        pocket.account_type_id,
        pocket.title,
        pocket.balance,
        pocket.held,
        pocket.redemption_limit_without_pin,
        pocket.expiring,
        _moment(pocket.next_expiry),
    ]


def _pocket_of(values: list[Any]) -> Pocket:
    pocket_id, kind, account_type_id, title, balance, held, limit, expiring, expiry = values
    return Pocket(
        pocket_id=pocket_id,
        kind=PocketKind(kind),
        account_type_id=account_type_id,
        title=title,
        balance=balance,
        held=held,
        redemption_limit_without_pin=limit,
        expiring=expiring,
        next_expiry=_instant(expiry),
    )


def _moment(value: datetime | None) -> int | None:
    """Microseconds since the epoch: exact, unlike a float of seconds."""
    if value is None:
        return None
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _instant(value: int | None) -> datetime | None:
    if value is None:
        return None
    seconds, microseconds = divmod(value, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=microseconds)
