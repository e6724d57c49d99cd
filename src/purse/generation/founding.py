"""The business `purse generate` fills: founded and set up through the public API, as
`purse demo` founds its coffee shop, then its members written by COPY.

Contract:

* `generate(channel, operator_key, database_url, members, seed)` founds the demo's
  coffee shop (`purse.demo.create_demo`: program, rules, goods, accounts, a point of sale
  with a cash desk and a waiter app, the demo customer) under a name of its own, adds
  `extra_points_of_sale` points of sale with a cash desk each and the categories of
  `tiers`, all through the server at `channel`; then writes `members` members with their
  history (`copying`, `histories`) straight into the database at `database_url`, and
  settles the tables. Their phones take the first of `phone_prefixes` no phone of Purse
  starts with (refused when none is free).
* Returns the demo's credentials (the owner's login and password open
  `purse admin sign-in`), what was written and how long each part took.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import asyncpg
import grpc

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1 import setup_pb2 as setup
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.demo import DemoBusiness, bearer, create_demo, create_terminal
from purse.generation import copying, histories, members_default, seed_default
from purse.v1 import terminal_service_pb2 as terminal

if TYPE_CHECKING:
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceAsyncStub

# Operators' codes of Ukraine; a build takes the first that no phone starts with.
phone_prefixes: Final = tuple(
    f"+380{code}" for code in ("96", "97", "98", "99", "93", "95", "67", "68", "66", "63")
)
# (name, share of the business's members who use it most): the demo's point of sale,
# then the ones added.
till_shares: Final = (0.5, 0.3, 0.2)
extra_points_of_sale: Final = ("Demo Coffee, Podil", "Demo Coffee, Obolon")
# (category, sales at least), the highest first.
tiers: Final = (("Gold", 25), ("Silver", 10))
_regulars: Final = "Regulars"  # the demo's own category


@dataclass(frozen=True, slots=True)
class Generated:
    demo: DemoBusiness
    phone_prefix: str
    copied: copying.Copied
    founding_seconds: float
    settling_seconds: float


async def generate(
    channel: grpc.aio.Channel,
    operator_key: str,
    database_url: str,
    members: int = members_default,
    seed: int = seed_default,
    progress: Callable[[int], None] = lambda written: None,
) -> Generated:
    """A demo business of `members` members with their history (see the module)."""
    started = time.perf_counter()
    demo = await create_demo(channel, operator_key, f"Demo Coffee ({members:,} members)")
    await _set_up(channel, demo)
    founding_seconds = time.perf_counter() - started
    # A connection of its own: no statement timeout for a COPY of millions of rows.
    connection = await asyncpg.connect(database_url)
    try:
        business = await _business(connection, demo.business_id)
        copied = await copying.copy_members(
            connection, business, members, histories.Shape(), seed, datetime.now(UTC), progress
        )
        started = time.perf_counter()
        await copying.settle(connection, copying.written_tables)
        settling_seconds = time.perf_counter() - started
    finally:
        await connection.close()
    return Generated(demo, business.phone_prefix, copied, founding_seconds, settling_seconds)


async def _set_up(channel: grpc.aio.Channel, demo: DemoBusiness) -> None:
    """The points of sale and categories the demo lacks."""
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    owner = bearer(demo.administrator_api_key)
    for number, name in enumerate(extra_points_of_sale, start=2):
        shop = await stub.CreatePointOfSale(
            setup.CreatePointOfSaleRequest(
                point_of_sale=setup.PointOfSale(
                    program_id=demo.program_id, name=name, time_zone="Europe/Kyiv", published=True
                )
            ),
            metadata=owner,
        )
        await create_terminal(
            stub,
            owner,
            shop.point_of_sale.point_of_sale_id,
            terminal.TERMINAL_KIND_CASH_DESK,
            f"demo-{demo.business_id}-cash-{number}",
        )
    for name, _ in tiers:
        await stub.CreateCustomerCategory(
            admin.CreateCustomerCategoryRequest(category=admin.CustomerCategory(name=name)),
            metadata=owner,
        )


async def _business(connection: asyncpg.Connection, business_id: int) -> histories.Business:
    """The business as the generator needs it, read back from the database."""
    tills = await connection.fetch(
        "SELECT point_of_sale_id, min(terminal_id) FROM terminals"
        " WHERE business_id = $1 AND kind = 'cash_desk'"
        " GROUP BY point_of_sale_id ORDER BY point_of_sale_id",
        business_id,
    )
    categories = await connection.fetch(
        "SELECT name, category_id, is_default FROM customer_categories WHERE business_id = $1",
        business_id,
    )
    by_name = {row["name"]: row["category_id"] for row in categories}
    default = next(row["category_id"] for row in categories if row["is_default"])
    return histories.Business(
        business_id=business_id,
        phone_prefix=await _free_phone_prefix(connection),
        tills=tuple((row[0], row[1]) for row in tills),
        till_weights=till_shares[: len(tills)],
        default_category_id=default,
        regulars_category_id=by_name[_regulars],
        tiers=tuple((least, by_name[name]) for name, least in tiers),
    )


async def _free_phone_prefix(connection: asyncpg.Connection) -> str:
    for prefix in phone_prefixes:
        taken = "SELECT EXISTS (SELECT 1 FROM customers WHERE phone LIKE $1 || '%')"
        if not await connection.fetchval(taken, prefix):
            return prefix
    raise RuntimeError(
        "every phone prefix a generated business may use is taken: use a new data directory"
    )
