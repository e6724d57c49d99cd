"""Delivery providers: where an outgoing message leaves Purse.

A provider's `send` delivers one message and says what happened:

- `DELIVERED`: the gateway says it reached the customer (an SMS webhook answering
  `{"status": "delivered"}`; a push gateway answering so for a token);
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

`PushWebhookProvider` POSTs to a push gateway in the style of the common ones (Expo, FCM
relays): `{"to": [tokens], "title", "body", "data"}`, and reads one result per token in
the answer's `data` list, in the order of `to`: `{"status": "ok"}` (sent),
`{"status": "delivered"}`, or `{"status": "error", "details": {"error": ...}}`, where
`DeviceNotRegistered` (or `Unregistered`) names a token to revoke. The message is
delivered when a token's result says so, sent when one was accepted, and rejected
(PUSH_NOT_DELIVERED, or DEVICE_NOT_REGISTERED when every token is gone) when none was.
A 2xx answer without readable results counts as sent: the gateway took the message,
and falling back to SMS could message the customer twice.
"""

from __future__ import annotations

import email.utils
import enum
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TextIO

import httpx

reason_characters_max = 200
retry_after_seconds_max = 3_600
_http_retry_statuses = frozenset({408, 429})
# A push gateway's answer is read up to this size: one result per token is small.
push_answer_bytes_max = 65_536
push_not_delivered = "PUSH_NOT_DELIVERED"
device_not_registered = "DEVICE_NOT_REGISTERED"
_unregistered_errors = frozenset({"DeviceNotRegistered", "Unregistered"})


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
    DELIVERED = "delivered"
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
    def delivered(cls) -> Delivery:
        return cls(DeliveryOutcome.DELIVERED)

    @classmethod
    def sent(cls) -> Delivery:
        return cls(DeliveryOutcome.SENT)

    @property
    def reached(self) -> bool:
        """Sent or delivered: the gateway took the message."""
        return self.outcome in (DeliveryOutcome.SENT, DeliveryOutcome.DELIVERED)

    @classmethod
    def retry(cls, reason: str, retry_after_ms: int = 0) -> Delivery:
        return cls(DeliveryOutcome.RETRY, reason[:reason_characters_max], retry_after_ms)

    @classmethod
    def rejected(cls, reason: str) -> Delivery:
        return cls(DeliveryOutcome.REJECTED, reason[:reason_characters_max])


@dataclass(frozen=True, slots=True)
class PushDelivery:
    """What a push gateway did with one message, and the tokens it no longer knows."""

    delivery: Delivery
    unregistered_tokens: tuple[str, ...] = field(default=())


class Provider(Protocol):
    async def send(self, message: OutgoingMessage) -> Delivery: ...


class PushProvider(Protocol):
    async def push(
        self, message: OutgoingMessage, tokens: Sequence[str], title: str
    ) -> PushDelivery: ...


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


class _JsonWebhook:
    """POSTs JSON with an idempotency key to `url`; owns an HTTP client closed by `aclose()`."""

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

    async def _post(
        self, payload: dict[str, object], idempotency_key: str
    ) -> httpx.Response | Delivery:
        """The gateway's answer, or the RETRY a transport failure means."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        try:
            return await self._client.post(
                self._url, content=body.encode(), headers={"idempotency-key": idempotency_key}
            )
        except httpx.TimeoutException:
            return Delivery.retry("TIMEOUT")
        except httpx.HTTPError as error:
            # Only the class name: the text of an error may quote the request.
            return Delivery.retry(f"TRANSPORT_ERROR {type(error).__name__}")

    async def aclose(self) -> None:
        await self._client.aclose()


def _answer_json(response: httpx.Response) -> object:
    """The answer's JSON, or None when it is absent, too large or not JSON."""
    if not response.content or len(response.content) > push_answer_bytes_max:
        return None
    try:
        return json.loads(response.content)
    except ValueError:
        return None


class WebhookProvider(_JsonWebhook):
    """POSTs each message as JSON (SMS, or every channel when no push gateway is set)."""

    async def send(self, message: OutgoingMessage) -> Delivery:
        answer = await self._post(message.as_json(), f"{message.business_id}-{message.message_id}")
        if isinstance(answer, Delivery):
            return answer
        delivery = delivery_for_status(answer.status_code, answer.headers.get("retry-after"))
        if delivery.outcome is DeliveryOutcome.SENT:
            said = _answer_json(answer)
            if isinstance(said, dict) and said.get("status") == "delivered":
                return Delivery.delivered()
        return delivery


def push_results(answer: object, tokens: Sequence[str]) -> PushDelivery:
    """The message's delivery from a 2xx push answer's per-token results (pure)."""
    results = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(results, list) or len(results) != len(tokens):
        return PushDelivery(Delivery.sent())
    statuses: list[str] = []
    unregistered: list[str] = []
    for token, result in zip(tokens, results, strict=True):
        status = result.get("status") if isinstance(result, dict) else None
        details = result.get("details") if isinstance(result, dict) else None
        error = details.get("error") if isinstance(details, dict) else None
        if status == "error" and error in _unregistered_errors:
            unregistered.append(token)
        statuses.append(status if isinstance(status, str) else "error")
    if "delivered" in statuses:
        delivery = Delivery.delivered()
    elif "ok" in statuses or "sent" in statuses:
        delivery = Delivery.sent()
    elif len(unregistered) == len(tokens):
        delivery = Delivery.rejected(device_not_registered)
    else:
        delivery = Delivery.rejected(push_not_delivered)
    return PushDelivery(delivery, tuple(unregistered))


class PushWebhookProvider(_JsonWebhook):
    """POSTs each message to a push gateway for all of a customer's tokens at once."""

    async def push(
        self, message: OutgoingMessage, tokens: Sequence[str], title: str
    ) -> PushDelivery:
        payload: dict[str, object] = {
            "to": list(tokens),
            "title": title,
            "body": message.text,
            "data": {
                "message_id": message.message_id,
                "business_id": message.business_id,
                "customer_id": message.customer_id,
            },
        }
        # Its own key: an SMS gateway and a push gateway may be one service.
        answer = await self._post(payload, f"{message.business_id}-{message.message_id}-push")
        if isinstance(answer, Delivery):
            return PushDelivery(answer)
        delivery = delivery_for_status(answer.status_code, answer.headers.get("retry-after"))
        if delivery.outcome is not DeliveryOutcome.SENT:
            return PushDelivery(delivery)
        return push_results(_answer_json(answer), tokens)
