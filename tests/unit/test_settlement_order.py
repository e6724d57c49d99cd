"""Settlement refuses a sale calculated on balances that changed, and checks of one
customer take turns in a process."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from purse.domain.transactions import (
    FINAL_REFUSALS,
    Balance,
    Effects,
    LedgerKind,
    LockedState,
    PocketChange,
    Refusal,
    settle,
)
from purse.service.terminal.customer_turns import CustomerTurns

points = (7, 0)


@given(read=st.integers(0, 1_000), locked=st.integers(0, 1_000), accrued=st.integers(1, 100))
def test_a_sale_applies_only_on_the_balances_it_was_calculated_on(
    read: int, locked: int, accrued: int
) -> None:
    state = LockedState(pockets={points: Balance(locked, 0)})
    effects = Effects(
        pockets=(PocketChange(points, LedgerKind.ACCRUE, accrued),),
        expected=((points, read, 0),),
    )
    refusal = settle(state, effects)
    if read == locked:
        assert refusal is None
        assert state.pockets[points] == Balance(locked + accrued, 0)
    else:
        assert refusal is Refusal.BALANCE_CHANGED
        assert refusal not in FINAL_REFUSALS  # calculated again, never stored as the answer
        assert state.pockets[points] == Balance(locked, 0)


async def test_groups_sharing_a_customer_take_turns_in_the_order_they_asked() -> None:
    turns = CustomerTurns()
    order: list[str] = []
    first_holds = asyncio.Event()

    async def group(name: str, customers: list[int], hold: asyncio.Event | None) -> set[int]:
        async with turns.taken(1, customers) as shared:
            order.append(name)
            if hold is not None:
                first_holds.set()
                await hold.wait()
            return shared

    release = asyncio.Event()
    first = asyncio.create_task(group("first", [5, 3], release))
    await first_holds.wait()
    second = asyncio.create_task(group("second", [3, 9], None))
    alone = asyncio.create_task(group("alone", [11], None))
    await asyncio.sleep(0)
    await alone
    assert order == ["first", "alone"]  # another customer never waits
    release.set()
    assert await first == set()
    assert await second == {3}  # it waited for customer 3: re-read them
    assert order == ["first", "alone", "second"]
