"""The outbox dispatcher: sends due outbox messages and records what happened.

One round (`run_once`): claim a batch of due messages (one statement), decide each one,
send those that may go concurrently with at most `sends_in_flight_max` in flight, record
every result (one statement). `run` repeats rounds until stopped, sleeping
`poll_interval_ms` when a round found nothing.

Rules, decided by the pure functions `prepare` and `settle`:

- A 'pin' message is transactional and always sent. Its body holds `{pin}`; the PIN is
  `sealing.unseal(pin_key, sealed_secret)`, filled in just before sending. A PIN that
  cannot be unsealed fails the message at once (PIN_UNREADABLE; PIN_SEALED_BY_OLDER_VERSION
  when it was sealed before the current format: the cashier resends the code), as does a
  body with a placeholder other than `{pin}` (TEMPLATE_INVALID).
- A 'transaction' or 'bulk' message whose customer has not confirmed participation is
  rejected (PARTICIPATION_NOT_CONFIRMED) without reaching the provider: it costs nothing.
- Where it goes (`route`), when a push gateway is set: SMS to the phone; PUSH to the
  customer's live device tokens, rejected (NO_DEVICE) when there are none; SMART as push,
  and as SMS — once — when the customer has no live token or the push was not sent (every
  token failed, the gateway refused it, or could not be reached: a customer's notice
  does not wait for a push gateway to come back). A smart message that fell back keeps
  'sms' as its `delivery_channel`, so its retries go to SMS only. Without a push gateway
  every message goes to the one provider, its channel named in the payload.
- Tokens a push gateway calls unregistered are revoked after the round.
- DELIVERED -> 'delivered'; SENT -> 'sent'; REJECTED -> 'rejected'; RETRY (or a
  provider exception, or a send still running at the batch deadline) -> attempts + 1
  and `next_attempt_at` pushed back by an exponential backoff with jitter, bounded by
  `backoff_ms_max`, or by the gateway's Retry-After when that is longer; the attempt
  numbered `attempts_max` that fails makes the message 'failed'.

Every result is counted in `purse_outbox_messages_total` by status (a RETRY as 'retry'),
and every attempt in `purse_notify_messages_total` by channel and state (queued when it
will be tried again, sent, delivered, failed, rejected; a push a smart message fell back
from counts as push failed or rejected, then the SMS as what became of it).

Neither a PIN nor the text of a message is ever logged: logs name messages by ids only.
Sends of one batch must end well before the claim's lease does (see
`store.postgres.outbox`), so each batch has a deadline at `_lease_share_for_sending` of
the lease; whatever is still sending then counts as RETRY (SEND_DEADLINE).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter

from purse import sealing
from purse.notify import texts
from purse.notify.providers import (
    Channel,
    Delivery,
    DeliveryOutcome,
    OutgoingMessage,
    Provider,
    PushDelivery,
    PushProvider,
)
from purse.store.postgres.device_tokens import DeviceTokenStore
from purse.store.postgres.outbox import (
    DueMessage,
    MessagePurpose,
    MessageResult,
    MessageStatus,
    OutboxStore,
)

_logger = logging.getLogger(__name__)

# The purpose given to `sealing.sealing_key` for the key that seals outbox PINs; the
# writer of PIN messages must seal with the same key.
pin_key_purpose = "outbox-pin"
participation_not_confirmed = "PARTICIPATION_NOT_CONFIRMED"
pin_unreadable = "PIN_UNREADABLE"
pin_sealed_by_older_version = "PIN_SEALED_BY_OLDER_VERSION"
template_invalid = "TEMPLATE_INVALID"
send_deadline_exceeded = "SEND_DEADLINE"
no_device = "NO_DEVICE"
# Sending gets this share of the claim lease; the rest is left for recording the results.
_lease_share_for_sending = 0.75
_purposes_needing_participation = frozenset({MessagePurpose.TRANSACTION, MessagePurpose.BULK})


class Route(enum.Enum):
    """How a message is sent: to the message provider, or to the push gateway."""

    SMS = "sms"
    PUSH = "push"
    PUSH_THEN_SMS = "push then sms"


def route(
    channel: Channel,
    device_tokens: Sequence[str],
    delivery_channel: str | None,
    push_enabled: bool,
) -> Route | str:
    """The route of a message, or the reason it is rejected unsent (pure)."""
    if not push_enabled or channel is Channel.SMS:
        return Route.SMS
    if channel is Channel.PUSH:
        return Route.PUSH if device_tokens else no_device
    if delivery_channel == Channel.SMS.value or not device_tokens:
        return Route.SMS
    return Route.PUSH_THEN_SMS


def falls_back(way: Route, push: Delivery) -> bool:
    """Whether a push that ended with `push` is followed by an SMS (pure)."""
    return way is Route.PUSH_THEN_SMS and not push.reached


def notify_state(status: MessageStatus) -> str:
    """The delivery state a status is counted as: a pending message is queued."""
    return "queued" if status is MessageStatus.PENDING else status.value


def retry_delay_ms(
    attempts_made: int, backoff_ms_first: int, backoff_ms_max: int, random_fraction: float
) -> int:
    """Delay before the next attempt after `attempts_made` failed ones (pure).

    Doubles from `backoff_ms_first` per attempt, capped at `backoff_ms_max`; "equal
    jitter": the upper half of the delay is randomized (`random_fraction` in [0, 1)),
    so retries of many messages spread out but never come sooner than half the delay.
    """
    exponent = max(attempts_made - 1, 0)
    # Cap the shift too: the doubling must not grow without bound before the min().
    ceiling = min(backoff_ms_max, backoff_ms_first << min(exponent, 62))
    half = ceiling // 2
    return half + int((ceiling - half) * random_fraction)


def prepare(message: DueMessage, pin_key: bytes) -> OutgoingMessage | MessageResult:
    """What to send for a claimed message, or its final result when it must not be sent."""

    def final(status: MessageStatus, reason: str) -> MessageResult:
        return MessageResult(
            message.business_id,
            message.message_id,
            message.claimed_until,
            status,
            reason,
            message.attempts,
        )

    if message.purpose in _purposes_needing_participation and not message.participation_confirmed:
        return final(MessageStatus.REJECTED, participation_not_confirmed)
    text = message.body
    if message.purpose is MessagePurpose.PIN:
        if message.sealed_secret is None:
            return final(MessageStatus.FAILED, pin_unreadable)
        try:
            pin = sealing.unseal(pin_key, message.sealed_secret)
        except sealing.SealedByOlderVersion:
            return final(MessageStatus.FAILED, pin_sealed_by_older_version)
        except ValueError:  # altered, or sealed with another key (UnicodeDecodeError too)
            return final(MessageStatus.FAILED, pin_unreadable)
        try:
            text = texts.render(message.body, {"pin": pin})
        except ValueError:
            return final(MessageStatus.FAILED, template_invalid)
    return OutgoingMessage(
        message_id=message.message_id,
        business_id=message.business_id,
        customer_id=message.customer_id,
        channel=Channel(message.channel),
        phone=message.phone,
        text=text,
    )


def settle(
    message: DueMessage,
    delivery: Delivery,
    attempts_max: int,
    delay_ms: Callable[[int], int],
    delivery_channel: str | None = None,
) -> MessageResult:
    """The result of one delivery attempt on `delivery_channel`; `delay_ms(attempts_made)`
    gives the backoff."""
    attempts = message.attempts + 1
    if delivery.outcome is DeliveryOutcome.DELIVERED:
        status, reason, delay = MessageStatus.DELIVERED, "", 0
    elif delivery.outcome is DeliveryOutcome.SENT:
        status, reason, delay = MessageStatus.SENT, "", 0
    elif delivery.outcome is DeliveryOutcome.REJECTED:
        status, reason, delay = MessageStatus.REJECTED, delivery.reason, 0
    elif attempts >= attempts_max:
        status, reason, delay = MessageStatus.FAILED, delivery.reason, 0
    else:
        delay = max(delay_ms(attempts), delivery.retry_after_ms)
        status, reason = MessageStatus.PENDING, delivery.reason
    return MessageResult(
        message.business_id,
        message.message_id,
        message.claimed_until,
        status,
        reason,
        attempts,
        delay,
        delivery_channel,
    )


class OutboxDispatcher:
    """Sends due outbox messages through one provider; safe to run in many processes."""

    def __init__(
        self,
        store: OutboxStore,
        provider: Provider,
        pin_key: bytes,
        batch_messages_max: int,
        poll_interval_ms: int,
        attempts_max: int,
        backoff_ms_first: int,
        backoff_ms_max: int,
        sends_in_flight_max: int = 32,
        claim_lease_ms: int = 60_000,
        registry: CollectorRegistry | None = None,
        push: PushProvider | None = None,
        device_tokens: DeviceTokenStore | None = None,
    ) -> None:
        if (push is None) != (device_tokens is None):
            raise ValueError("a push provider needs the device token store, and only it")
        if min(batch_messages_max, attempts_max, sends_in_flight_max) < 1:
            raise ValueError("batch, attempts and in-flight limits must be at least 1")
        if not 0 < backoff_ms_first <= backoff_ms_max:
            raise ValueError("backoff must satisfy 0 < backoff_ms_first <= backoff_ms_max")
        if poll_interval_ms < 0 or claim_lease_ms < 1:
            raise ValueError(
                "the poll interval must not be negative, the claim lease must be positive"
            )
        self._store = store
        self._provider = provider
        self._pin_key = pin_key
        self._batch_messages_max = batch_messages_max
        self._poll_interval_seconds = poll_interval_ms / 1000
        self._attempts_max = attempts_max
        self._backoff_ms_first = backoff_ms_first
        self._backoff_ms_max = backoff_ms_max
        self._sends_in_flight = asyncio.Semaphore(sends_in_flight_max)
        self._claim_lease_ms = claim_lease_ms
        self._random = random.SystemRandom()
        counted = Counter(
            "purse_outbox_messages",
            "Outbox messages handled by the dispatcher, by what happened ('retry': will retry)",
            ["status"],
            registry=registry,
        )
        self._counted = {status: counted.labels(status.value) for status in MessageStatus}
        self._counted_retry = counted.labels("retry")
        self._push = push
        self._device_tokens = device_tokens
        self._counted_by_channel = Counter(
            "purse_notify_messages",
            "Delivery attempts by channel and the state they left the message in",
            ["channel", "state"],
            registry=registry,
        )

    def _delay_ms(self, attempts_made: int) -> int:
        return retry_delay_ms(
            attempts_made, self._backoff_ms_first, self._backoff_ms_max, self._random.random()
        )

    async def run_once(self) -> int:
        """One round: claim, send, record. Returns how many messages it handled."""
        claimed = await self._store.claim_due(self._batch_messages_max, self._claim_lease_ms)
        if not claimed:
            return 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._claim_lease_ms / 1000 * _lease_share_for_sending
        handled = await asyncio.gather(*(self._handle(message, deadline) for message in claimed))
        results = [result for result, _ in handled]
        for result in results:
            pending = result.status is MessageStatus.PENDING
            (self._counted_retry if pending else self._counted[result.status]).inc()
        recorded = await self._store.record(results)
        if recorded != len(results):
            _logger.warning(
                "outbox leases ran out before results were recorded",
                extra={"claimed": len(results), "recorded": recorded},
            )
        await self._revoke_unregistered(
            [(result.business_id, tokens) for result, tokens in handled if tokens]
        )
        return len(claimed)

    async def _revoke_unregistered(self, found: list[tuple[int, tuple[str, ...]]]) -> None:
        if not found or self._device_tokens is None:
            return
        by_business: defaultdict[int, list[str]] = defaultdict(list)
        for business_id, tokens in found:
            by_business[business_id].extend(tokens)
        for business_id, unknown in by_business.items():
            await self._device_tokens.revoke_unregistered(business_id, unknown)

    async def _handle(
        self, message: DueMessage, deadline: float
    ) -> tuple[MessageResult, tuple[str, ...]]:
        """The message's result and the device tokens the push gateway did not know."""
        prepared = prepare(message, self._pin_key)
        way = route(
            Channel(message.channel),
            message.device_tokens,
            message.delivery_channel,
            self._push is not None,
        )
        unregistered: tuple[str, ...] = ()
        if isinstance(prepared, MessageResult):
            result = prepared
        elif isinstance(way, str):
            result = MessageResult(
                message.business_id,
                message.message_id,
                message.claimed_until,
                MessageStatus.REJECTED,
                way,
                message.attempts,
            )
        else:
            delivery, delivery_channel, unregistered = await self._deliver(
                prepared, message, way, deadline
            )
            result = settle(message, delivery, self._attempts_max, self._delay_ms, delivery_channel)
        self._counted_by_channel.labels(
            result.delivery_channel or message.channel, notify_state(result.status)
        ).inc()
        if result.status not in (MessageStatus.SENT, MessageStatus.DELIVERED):
            _logger.info(
                "outbox message not sent",
                extra={
                    "business_id": message.business_id,
                    "message_id": message.message_id,
                    "status": result.status.value,
                    "reason": result.reason,
                    "attempts": result.attempts,
                },
            )
        return result, unregistered

    async def _deliver(
        self, prepared: OutgoingMessage, message: DueMessage, way: Route, deadline: float
    ) -> tuple[Delivery, str | None, tuple[str, ...]]:
        """Send along `way`: the delivery, the channel it was made on, unknown tokens."""
        if way is Route.SMS:
            # Without a push gateway the one provider takes every channel, as it names.
            channel = message.channel if message.channel != Channel.SMART else None
            if self._push is not None:
                channel = Channel.SMS.value
            return await self._send(prepared, deadline), channel, ()
        pushed = await self._send_push(prepared, message, deadline)
        if not falls_back(way, pushed.delivery):
            return pushed.delivery, Channel.PUSH.value, pushed.unregistered_tokens
        tried = "rejected" if pushed.delivery.outcome is DeliveryOutcome.REJECTED else "failed"
        self._counted_by_channel.labels(Channel.PUSH.value, tried).inc()
        sms = await self._send(prepared, deadline)
        return sms, Channel.SMS.value, pushed.unregistered_tokens

    async def _send_push(
        self, prepared: OutgoingMessage, message: DueMessage, deadline: float
    ) -> PushDelivery:
        assert self._push is not None
        try:
            async with asyncio.timeout_at(deadline), self._sends_in_flight:
                return await self._push.push(prepared, message.device_tokens, message.business_name)
        except TimeoutError:
            return PushDelivery(Delivery.retry(send_deadline_exceeded))
        except Exception as error:
            # Only the class name: an exception's text may quote the message.
            return PushDelivery(Delivery.retry(f"PROVIDER_ERROR {type(error).__name__}"))

    async def _send(self, message: OutgoingMessage, deadline: float) -> Delivery:
        try:
            async with asyncio.timeout_at(deadline), self._sends_in_flight:
                return await self._provider.send(message)
        except TimeoutError:
            return Delivery.retry(send_deadline_exceeded)
        except Exception as error:
            # Only the class name: an exception's text may quote the message (and a PIN).
            return Delivery.retry(f"PROVIDER_ERROR {type(error).__name__}")

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until `stop` is set; a failed round is logged and retried after a pause."""
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except Exception:
                _logger.exception("an outbox round failed")
                handled = 0
            if handled == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._poll_interval_seconds)
