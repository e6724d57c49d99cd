"""Small conversions every AdminService mapping shares."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def archive_time(message: Any, archived_at: datetime | None) -> None:
    """Set the message's `archive_time` when the resource is archived."""
    if archived_at is not None:
        message.archive_time.FromDatetime(archived_at)
