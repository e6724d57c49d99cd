"""The one table from refusals to gRPC status codes, and the details it attaches."""

from __future__ import annotations

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from purse.api.grpc.common.errors import (
    STATUS_BY_ERROR,
    failure_status,
    rich_status,
    status_code_for,
)
from purse.domain import errors
from purse.store.postgres.conflicts import retry_on_conflict


def _details(status: grpc.Status) -> status_pb2.Status:
    trailer = dict(status.trailing_metadata)["grpc-status-details-bin"]
    return status_pb2.Status.FromString(trailer)


def test_every_refusal_class_has_a_status_code() -> None:
    refusal_classes = {
        value
        for value in vars(errors).values()
        if isinstance(value, type)
        and issubclass(value, errors.DomainError)
        and value is not errors.DomainError
    }
    assert refusal_classes == set(STATUS_BY_ERROR)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.invalid("a.b", "bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.NotFound("x", reason="CUSTOMER_NOT_FOUND"), grpc.StatusCode.NOT_FOUND),
        (errors.AlreadyExists("x", reason="CODE_TAKEN"), grpc.StatusCode.ALREADY_EXISTS),
        (errors.FailedPrecondition("x", reason="ARCHIVED"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.Unauthenticated("x", reason="TOKEN_EXPIRED"), grpc.StatusCode.UNAUTHENTICATED),
        (
            errors.PermissionDenied("x", reason="ROLE_NOT_ALLOWED"),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (errors.RateLimited("x", reason="SIGN_IN_BUSY"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.Overloaded("x", reason="QUEUE_FULL"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.Unavailable("x", reason="DEPENDENCY_UNAVAILABLE"), grpc.StatusCode.UNAVAILABLE),
        (errors.Aborted("x", reason="CONCURRENT_UPDATE"), grpc.StatusCode.ABORTED),
    ],
)
def test_each_refusal_maps_to_its_status_code(
    error: errors.DomainError, code: grpc.StatusCode
) -> None:
    assert status_code_for(error) == code
    assert rich_status(error).code == code


def test_bad_input_carries_error_info_and_field_violations() -> None:
    status = rich_status(errors.invalid("identifier.phone", "too short", "PHONE_INVALID"))
    details = _details(status)
    info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert details.details[0].Unpack(info)
    assert (info.reason, info.domain) == ("PHONE_INVALID", "purse")
    assert details.details[1].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("identifier.phone", "too short")
    ]


def test_rate_limits_say_when_to_retry() -> None:
    details = _details(
        rich_status(errors.RateLimited("slow down", reason="SIGN_IN_BUSY", retry_after_seconds=42))
    )
    retry = error_details_pb2.RetryInfo()
    assert details.details[-1].Unpack(retry)
    assert retry.retry_delay.seconds == 42


@pytest.mark.parametrize(
    "conflict", [asyncpg.DeadlockDetectedError("deadlock"), asyncpg.SerializationError("x")]
)
def test_a_deadlock_that_reaches_the_api_is_aborted_with_a_time_to_retry(
    conflict: Exception,
) -> None:
    status = failure_status(conflict)
    assert status is not None
    assert status.code == grpc.StatusCode.ABORTED
    details = _details(status)
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    assert details.details[0].Unpack(info)
    assert info.reason == "CONCURRENT_UPDATE"
    assert details.details[-1].Unpack(retry)
    assert retry.retry_delay.seconds >= 1


async def test_a_transaction_is_run_again_after_a_deadlock_until_it_passes() -> None:
    attempts: list[int] = []

    async def deadlocks_twice() -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise asyncpg.DeadlockDetectedError("deadlock detected")
        return "done"

    assert await retry_on_conflict(deadlocks_twice, 3, "test") == "done"
    assert attempts == [1, 2, 3]


async def test_a_deadlock_that_keeps_coming_back_ends_as_aborted_not_as_a_bug() -> None:
    attempts = []

    async def always_deadlocks() -> None:
        attempts.append(1)
        raise asyncpg.DeadlockDetectedError("deadlock detected")

    with pytest.raises(errors.Aborted) as aborted:
        await retry_on_conflict(always_deadlocks, 3, "test")
    assert len(attempts) == 3
    assert status_code_for(aborted.value) == grpc.StatusCode.ABORTED
