"""Delivery providers: where an outgoing message leaves Purse.

A provider's `send` delivers one message and says what happened:

- `SENT`: the gateway accepted it;
- `RETRY`: a temporary failure (timeout, connection refused, 408, 429, 5xx) — try later,
  and not before the gateway's `Retry-After` (seconds or an HTTP date; at most
  `retry_after_seconds_max`, so a wrong header cannot park messages for days);
- `REJECTED`: a permanent refusal (any other 4xx) — trying again would not help.

A provider never raises for a delivery problem it can classify; the dispatcher still
treats any exception as RETRY. `reason` is short and machine-readable ("HTTP 503",
"TIMEOUT") and never contains the message text, which may hold a PIN.

`ConsoleProvider` is the development gateway: one JSON line per message on a text stream.
It *is* the delivery (the text, PIN included, is the output), not a log.
`WebhookProvider` POSTs JSON to a configured URL, with an `Idempotency-Key` header made
of the business and message ids so that a gateway can drop the duplicate a retry after a
lost answer would otherwise produce.
"""

from __future__ import annotations

import email.utils
import enum
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TextIO

import httpx

reason_characters_max = 200
retry_after_seconds_max = 3_600
_http_retry_statuses = frozenset({408, 429})


class Channel(enum.StrEnum):
    """How the customer is reached; SMART is push first, SMS if the push fails."""

    SMS = "sms"
    PUSH = "push"
    SMART = "smart"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message ready to leave: the text is final (a PIN is already in it)."""

    message_id: int
    business_id: int
    customer_id: int
    channel: Channel
    phone: str  # E.164
    text: str

    def __repr__(self) -> str:
        # The text may hold a PIN: keep it out of reprs, tracebacks and logs.
        return (
            f"OutgoingMessage(message_id={self.message_id}, business_id={self.business_id},"
            f" customer_id={self.customer_id}, channel={self.channel.value})"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "message_id": self.message_id,
            "business_id": self.business_id,
            "customer_id": self.customer_id,
            "channel": self.channel.value,
            "phone": self.phone,
            "text": self.text,
        }


class DeliveryOutcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a provider did with one message; `reason` explains RETRY and REJECTED."""

    outcome: DeliveryOutcome
    reason: str = ""
    # For RETRY: the gateway asked not to be tried again sooner than this.
    retry_after_ms: int = 0

    @classmethod
    def sent(cls) -> Delivery:
        return cls(DeliveryOutcome.SENT)

    @classmethod
    def retry(cls, reason: str, retry_after_ms: int = 0) -> Delivery:
        return cls(DeliveryOutcome.RETRY, reason[:reason_characters_max], retry_after_ms)

    @classmethod
    def rejected(cls, reason: str) -> Delivery:
        return cls(DeliveryOutcome.REJECTED, reason[:reason_characters_max])


class Provider(Protocol):
    async def send(self, message: OutgoingMessage) -> Delivery: ...


class ConsoleProvider:
    """Development gateway: writes each message as one JSON line and counts it sent."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout

    async def send(self, message: OutgoingMessage) -> Delivery:
        line = json.dumps(message.as_json(), ensure_ascii=False, separators=(",", ":"))
        try:
            self._stream.write(line + "\n")
            self._stream.flush()
        except (OSError, ValueError) as error:  # a closed or broken stream
            return Delivery.retry(f"CONSOLE_ERROR {type(error).__name__}")
        return Delivery.sent()


def retry_after_ms(header: str | None, now: datetime) -> int:
    """A `Retry-After` value (delay seconds or an HTTP date) as a delay from `now`, in ms,
    at most `retry_after_seconds_max`; 0 when absent or unreadable."""
    if not header:
        return 0
    value = header.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return 0
        if moment.tzinfo is None:
            return 0
        seconds = (moment - now).total_seconds()
    return int(min(max(seconds, 0.0), retry_after_seconds_max) * 1000)


def delivery_for_status(status_code: int, retry_after: str | None = None) -> Delivery:
    """2xx sent; 408, 429 and 5xx retry (after `retry_after`, the header, if given); any
    other 4xx rejected; anything else retry."""
    if 200 <= status_code < 300:
        return Delivery.sent()
    if status_code in _http_retry_statuses or status_code >= 500:
        return Delivery.retry(f"HTTP {status_code}", retry_after_ms(retry_after, datetime.now(UTC)))
    if 400 <= status_code < 500:
        return Delivery.rejected(f"HTTP {status_code}")
    # 1xx/3xx: the gateway (or the URL in the settings) is wrong, which an operator can
    # fix; retrying keeps the messages until then, within the attempts limit.
    return Delivery.retry(f"HTTP {status_code}")


class WebhookProvider:
    """POSTs each message as JSON to `url`; owns an HTTP client, closed by `aclose()`."""

    def __init__(
        self,
        url: str,
        timeout_seconds: float,
        connections_max: int,
        secret: str = "",
        keepalive_seconds: float = 30.0,
    ) -> None:
        headers = {"content-type": "application/json; charset=utf-8"}
        if secret:
            headers["authorization"] = f"Bearer {secret}"
        self._url = url
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(
                max_connections=connections_max,
                max_keepalive_connections=connections_max,
                keepalive_expiry=keepalive_seconds,
            ),
            follow_redirects=False,
            # A stray HTTP_PROXY in the environment must not reroute customers' phones
            # and texts through some other host.
            trust_env=False,
        )

    async def send(self, message: OutgoingMessage) -> Delivery:
        body = json.dumps(message.as_json(), ensure_ascii=False, separators=(",", ":"))
        try:
            response = await self._client.post(
                self._url,
                content=body.encode(),
                headers={"idempotency-key": f"{message.business_id}-{message.message_id}"},
            )
        except httpx.TimeoutException:
            return Delivery.retry("TIMEOUT")
        except httpx.HTTPError as error:
            # Only the class name: the text of an error may quote the request.
            return Delivery.retry(f"TRANSPORT_ERROR {type(error).__name__}")
        return delivery_for_status(response.status_code, response.headers.get("retry-after"))

    async def aclose(self) -> None:
        await self._client.aclose()
