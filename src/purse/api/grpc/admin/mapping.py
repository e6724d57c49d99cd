"""Small conversions every AdminService mapping shares."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from purse.api.grpc.common.mapping import moment_from_proto


def archive_time(message: Any, archived_at: datetime | None) -> None:
    """Set the message's `archive_time` when the resource is archived."""
    if archived_at is not None:
        message.archive_time.FromDatetime(archived_at)


def optional_moment(message: Any, field: str, path: str) -> datetime | None:
    """A timestamp field the caller set, checked for range; None when unset."""
    return moment_from_proto(getattr(message, field), path) if message.HasField(field) else None


def set_moment(message: Any, field: str, moment: datetime | None) -> None:
    """Set the message's timestamp `field` when there is a moment."""
    if moment is not None:
        getattr(message, field).FromDatetime(moment)
