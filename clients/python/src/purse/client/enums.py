"""The base of the contract's enums in results: integers, as protobuf sends them, named.

`TransactionStatus.PENDING == 1`, so a member goes anywhere the generated module's
constant does (a request's field included). Protobuf's enums are open: a newer server may
send a number this client does not know; it reads as a member named `UNKNOWN_<number>`
instead of failing, so an answer is never lost for one field.
"""

from __future__ import annotations

import enum


class ContractEnum(enum.IntEnum):
    """An enum of the contract; its members are the values without the enum's prefix."""

    @classmethod
    def _missing_(cls, value: object) -> ContractEnum | None:
        if not isinstance(value, int):
            return None
        unknown = int.__new__(cls, value)
        unknown._name_ = f"UNKNOWN_{value}"
        unknown._value_ = value
        return unknown
