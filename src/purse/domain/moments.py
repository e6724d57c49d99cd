"""The range of moments Purse accepts from callers, and checks of a sale's time.

Every timestamp a caller sends is checked against one range before it reaches anything
that does arithmetic with it: a moment near the ends of what datetime can hold
(9999-12-31) overflows as soon as a time zone is applied, and one such check must never
fail the checks it shares a group with. A sale's time may also not lie in the future
(beyond clock skew between the till and the server), nor further back than an offline
till could reasonably have kept it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from purse.domain.errors import invalid

moment_earliest: Final = datetime(2000, 1, 1, tzinfo=UTC)
moment_latest: Final = datetime(2100, 1, 1, tzinfo=UTC)
# How far ahead of the server's clock a till's clock may run.
sale_time_ahead_seconds_max: Final = 300
# How long an offline till may hold a sale before uploading it.
sale_time_age_days_max: Final = 90


def moment_seconds_violation(seconds: int, nanos: int) -> str | None:
    """Why a (seconds, nanos) timestamp is outside the accepted range, or None."""
    if not 0 <= nanos < 1_000_000_000:
        return "nanos must be from 0 to 999,999,999"
    if not moment_earliest.timestamp() <= seconds < moment_latest.timestamp():
        return f"must be from {moment_earliest:%Y-%m-%d} to before {moment_latest:%Y-%m-%d}"
    return None


def check_sale_time(sale_time: datetime | None, now: datetime, field: str) -> None:
    """InvalidArgument when a processed sale's time is in the future or too old."""
    if sale_time is None:
        return
    if sale_time > now + timedelta(seconds=sale_time_ahead_seconds_max):
        raise invalid(field, "a sale cannot happen in the future", reason="SALE_TIME_IN_FUTURE")
    if sale_time < now - timedelta(days=sale_time_age_days_max):
        raise invalid(
            field,
            f"sales older than {sale_time_age_days_max} days cannot be uploaded",
            reason="SALE_TIME_TOO_OLD",
        )
