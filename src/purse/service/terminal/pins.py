"""A pending transaction's PIN: where it is kept, how often it may be sent, the SMS.

`codes` keeps each PIN (in Redis, with its wrong attempts) until its transaction is no
longer pending. `sends` is the one limit per phone and business that every PIN sent to
a phone counts against — a new pending sale's and each ResendCode's. The PIN is sealed
(AES-GCM, `purse.sealing`) before it is written to the outbox with its message; only the
dispatcher unseals it. The text is in the language the sending business's membership
records.
"""

from __future__ import annotations

from collections.abc import Callable

from purse import sealing
from purse.domain.customers import Membership
from purse.service.operations import Message
from purse.service.ports import Limit, PinCodes

# (language) -> the PIN message template, with the placeholder {pin}
PinText = Callable[[str], str]


class Pins:
    """What checkout and holds share about PINs: their store, their send limit, their SMS."""

    def __init__(self, codes: PinCodes, sends: Limit, seal_key: bytes, text: PinText) -> None:
        self.codes = codes
        self.sends = sends
        self._pin_seal_key = seal_key
        self._pin_text = text

    def message(self, membership: Membership, pin: str) -> Message:
        """The outbox message that carries `pin` to the customer's phone."""
        return Message(
            customer_id=membership.customer_id,
            channel="sms",
            purpose="pin",
            phone=membership.phone,
            language=membership.language,
            body=self._pin_text(membership.language),
            sealed_secret=sealing.seal(self._pin_seal_key, pin),
        )
