"""Where a message goes (push, SMS, or push then SMS), what a push gateway's answer means,
and the delivery state each result is counted as."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from purse.notify.dispatcher import (
    Route,
    falls_back,
    no_device,
    notify_state,
    route,
    settle,
)
from purse.notify.providers import (
    Channel,
    Delivery,
    DeliveryOutcome,
    device_not_registered,
    push_not_delivered,
    push_results,
)
from purse.store.postgres.outbox import DueMessage, MessagePurpose, MessageStatus

tokens = ("token-a", "token-b")


def test_a_smart_message_goes_as_push_first_when_the_customer_has_a_live_token() -> None:
    assert route(Channel.SMART, tokens, None, push_enabled=True) is Route.PUSH_THEN_SMS


def test_a_smart_message_goes_as_sms_when_the_customer_has_no_live_token() -> None:
    assert route(Channel.SMART, (), None, push_enabled=True) is Route.SMS


def test_a_smart_message_that_fell_back_goes_on_as_sms_even_with_tokens() -> None:
    assert route(Channel.SMART, tokens, "sms", push_enabled=True) is Route.SMS


def test_a_push_message_without_a_live_token_is_rejected_as_no_device() -> None:
    assert route(Channel.PUSH, (), None, push_enabled=True) == no_device
    assert route(Channel.PUSH, tokens, None, push_enabled=True) is Route.PUSH


@pytest.mark.parametrize("channel", list(Channel))
def test_without_a_push_gateway_every_channel_goes_to_the_one_provider(channel: Channel) -> None:
    assert route(channel, tokens, None, push_enabled=False) is Route.SMS


@pytest.mark.parametrize(
    ("push", "expected"),
    [
        (Delivery.delivered(), False),
        (Delivery.sent(), False),
        (Delivery.rejected(push_not_delivered), True),
        (Delivery.retry("HTTP 503"), True),
    ],
    ids=["delivered", "sent", "rejected", "retry"],
)
def test_a_smart_message_falls_back_to_sms_only_when_the_push_did_not_get_through(
    push: Delivery, expected: bool
) -> None:
    assert falls_back(Route.PUSH_THEN_SMS, push) is expected


def test_a_push_only_message_never_falls_back() -> None:
    assert falls_back(Route.PUSH, Delivery.rejected(push_not_delivered)) is False


def test_one_delivered_token_makes_the_push_delivered_and_unknown_tokens_are_named() -> None:
    answer = {
        "data": [
            {"status": "error", "details": {"error": "DeviceNotRegistered"}},
            {"status": "delivered"},
        ]
    }
    pushed = push_results(answer, tokens)
    assert pushed.delivery.outcome is DeliveryOutcome.DELIVERED
    assert pushed.unregistered_tokens == ("token-a",)


def test_an_accepted_token_makes_the_push_sent() -> None:
    answer = {
        "data": [{"status": "error", "details": {"error": "MessageRateExceeded"}}, {"status": "ok"}]
    }
    assert push_results(answer, tokens).delivery.outcome is DeliveryOutcome.SENT


def test_every_token_failing_rejects_the_push() -> None:
    answer = {
        "data": [
            {"status": "error", "details": {"error": "MessageTooBig"}},
            {"status": "error", "details": {"error": "Unregistered"}},
        ]
    }
    pushed = push_results(answer, tokens)
    assert pushed.delivery == Delivery.rejected(push_not_delivered)
    assert pushed.unregistered_tokens == ("token-b",)


def test_every_token_unregistered_rejects_the_push_as_device_not_registered() -> None:
    unknown = {"status": "error", "details": {"error": "DeviceNotRegistered"}}
    pushed = push_results({"data": [unknown, unknown]}, tokens)
    assert pushed.delivery == Delivery.rejected(device_not_registered)
    assert pushed.unregistered_tokens == tokens


@pytest.mark.parametrize(
    "answer",
    [None, "ok", {"data": "ok"}, {"data": [{"status": "ok"}]}],
    ids=["empty", "not an object", "no list", "a result short"],
)
def test_an_accepted_push_without_readable_results_counts_as_sent(answer: object) -> None:
    pushed = push_results(answer, tokens)
    assert pushed.delivery.outcome is DeliveryOutcome.SENT
    assert pushed.unregistered_tokens == ()


def due(channel: str = "smart", attempts: int = 0) -> DueMessage:
    return DueMessage(
        business_id=3,
        message_id=7,
        customer_id=5,
        channel=channel,
        purpose=MessagePurpose.BULK,
        phone="+380991234567",
        language="en",
        body="news",
        sealed_secret=None,
        attempts=attempts,
        participation_confirmed=True,
        claimed_until=datetime(2026, 1, 1, tzinfo=UTC),
        device_tokens=tokens,
    )


def test_a_delivered_answer_settles_the_message_as_delivered_on_its_channel() -> None:
    result = settle(due(), Delivery.delivered(), 5, lambda attempts: 0, "push")
    assert (result.status, result.delivery_channel, result.attempts) == (
        MessageStatus.DELIVERED,
        "push",
        1,
    )


def test_a_retried_fallback_keeps_sms_as_its_channel() -> None:
    result = settle(due(), Delivery.retry("HTTP 503"), 5, lambda attempts: 40, "sms")
    assert (result.status, result.delivery_channel, result.retry_delay_ms) == (
        MessageStatus.PENDING,
        "sms",
        40,
    )


def test_a_pending_message_is_counted_as_queued_and_the_others_by_their_status() -> None:
    assert notify_state(MessageStatus.PENDING) == "queued"
    assert [
        notify_state(status) for status in MessageStatus if status is not MessageStatus.PENDING
    ] == [
        "sent",
        "delivered",
        "rejected",
        "failed",
    ]
