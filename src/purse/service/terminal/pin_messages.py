"""The SMS that carries a pending transaction's PIN.

The PIN is sealed (AES-GCM, `purse.sealing`) before it is written to the outbox with the
message; only the dispatcher unseals it. The text is in the language the sending
business's membership records.
"""

from __future__ import annotations

from collections.abc import Callable

from purse import sealing
from purse.domain.customers import Membership
from purse.service.operations import Message

# (language) -> the PIN message template, with the placeholder {pin}
PinText = Callable[[str], str]


class PinMessages:
    """Builds the outbox message of a PIN."""

    def __init__(self, seal_key: bytes, text: PinText) -> None:
        self._pin_seal_key = seal_key
        self._pin_text = text

    def message(self, membership: Membership, pin: str) -> Message:
        return Message(
            customer_id=membership.customer_id,
            channel="sms",
            purpose="pin",
            phone=membership.phone,
            language=membership.language,
            body=self._pin_text(membership.language),
            sealed_secret=sealing.seal(self._pin_seal_key, pin),
        )
