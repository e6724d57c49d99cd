"""A gateway's Retry-After header, read as a delay: seconds or an HTTP date, bounded."""

from __future__ import annotations

from datetime import UTC, datetime

from purse.notify.providers import (
    DeliveryOutcome,
    delivery_for_status,
    retry_after_ms,
    retry_after_seconds_max,
)

now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def test_delay_seconds_and_http_dates_both_count() -> None:
    assert retry_after_ms("120", now) == 120_000
    assert retry_after_ms("Mon, 23 Nov 2026 12:00:30 GMT", now) == 30_000


def test_a_missing_unreadable_or_past_value_means_no_wait() -> None:
    assert retry_after_ms(None, now) == 0
    assert retry_after_ms("soon", now) == 0
    assert retry_after_ms("Mon, 23 Nov 2026 11:00:00 GMT", now) == 0


def test_a_gateway_cannot_park_messages_longer_than_the_maximum() -> None:
    assert retry_after_ms("999999", now) == retry_after_seconds_max * 1000


def test_only_a_retry_carries_the_wait() -> None:
    assert delivery_for_status(503, "7").retry_after_ms == 7_000
    assert delivery_for_status(503, "7").outcome is DeliveryOutcome.RETRY
    assert delivery_for_status(400, "7").retry_after_ms == 0
