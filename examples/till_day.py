"""A till's day with purse-client, the typed Python client, and nothing else of Purse's.

Install the client alone (`pip install ./clients/python`: grpcio, protobuf and the
google.rpc protos come with it, no server) and run against a server (`make serve`):

    python examples/till_day.py --target 127.0.0.1:50051 --terminal-key KEY \
        --admin-key KEY --phone +380501112233

KEY: a terminal's API key and an administrator's of the same business (`purse demo`
prints both). Each step prints one JSON line:

  1. identify: the customer by phone (enrolled when new) and their points;
  2. calculate: a check of two lines, changing nothing: what is to pay;
  3. process: the same check applied, then sent again: the same transaction comes back;
  4. stream: two more checks on one ProcessChecks stream, their results in order;
  5. refused: a phone that is not one: PurseError's code, reason and wrong field;
  6. admin: as an administrator, the customer's card found by phone, with the sales.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from collections.abc import Awaitable

from purse.client import AdminClient, PurseError, TerminalClient, identifier
from purse.v1 import terminal_service_pb2 as terminal


def check(phone: str, check_number: str) -> terminal.ProcessCheckRequest:
    """A check of a coffee and a croissant for the customer with `phone`."""
    lines = [
        terminal.CheckLine(position=1, product_code="LATTE", price_minor_units=7_000,
                           quantity_thousandths=2_000),
        terminal.CheckLine(position=2, product_code="CROISSANT", price_minor_units=5_500,
                           quantity_thousandths=1_000),
    ]  # fmt: skip
    return terminal.ProcessCheckRequest(
        check_number=check_number,
        identifier=identifier(phone=phone),
        check=terminal.Check(lines=lines),
    )


async def refusal(call: Awaitable[object]) -> PurseError:
    try:
        await call
    except PurseError as error:
        return error
    raise SystemExit("the call was expected to be refused")


def say(step: str, **facts: object) -> None:
    print(json.dumps({"step": step, **facts}), flush=True)


async def till_day(target: str, terminal_key: str, admin_key: str, phone: str) -> None:
    day = secrets.token_hex(4)
    async with TerminalClient(target, api_key=terminal_key) as till:
        membership = await till.identify(phone=phone)
        points = membership.pockets[0].available if membership.pockets else 0
        say("identify", customer_id=membership.customer_id, points_hundredths=points)

        sale = check(phone, f"{day}-1")
        preview = await till.calculate_check(identifier=sale.identifier, check=sale.check)
        say("calculate", to_pay_minor_units=preview.receipt.to_pay_minor_units)

        first = await till.process_check(sale)
        again = await till.process_check(sale)
        say(
            "process",
            transaction_id=first.transaction.transaction_id,
            status=first.transaction.status.name,
            same_again=again.transaction.transaction_id == first.transaction.transaction_id,
            created_at=first.transaction.create_time.isoformat()
            if first.transaction.create_time
            else None,
        )

        async with till.check_stream() as stream:
            results = await stream.process([check(phone, f"{day}-2"), check(phone, f"{day}-3")])
        say(
            "stream",
            check_numbers=[result.check_number for result in results],
            statuses=[
                result.processed.transaction.status.name if result.processed else "refused"
                for result in results
            ],
        )

        refused = await refusal(till.identify(phone="12"))
        say(
            "refused",
            code=refused.code.name,
            reason=refused.reason,
            fields=sorted(refused.field_violations),
        )
    async with AdminClient(target, api_key=admin_key) as admin:
        found = await admin.find_customer(identifier=identifier(phone=phone))
        say("admin", customer_id=found.card.membership.customer_id,
            sales_count=found.card.membership.sales_count)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--terminal-key", required=True)
    parser.add_argument("--admin-key", required=True)
    parser.add_argument("--phone", required=True)
    arguments = parser.parse_args()
    try:
        asyncio.run(
            till_day(arguments.target, arguments.terminal_key, arguments.admin_key, arguments.phone)
        )
    except PurseError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
