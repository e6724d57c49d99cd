"""The one table from refusals to gRPC status codes, and the rich error details.

Every DomainError class maps to exactly one status code. The status carries a
google.rpc.Status in the `grpc-status-details-bin` trailer with an ErrorInfo (domain
"purse", the error's stable reason, its metadata), a BadRequest listing field
violations for bad input, and a RetryInfo when trying again later makes sense.
Failures of PostgreSQL or Redis become UNAVAILABLE: the same call may succeed later. A
transaction PostgreSQL rolled back for a deadlock or a serialization conflict (when its
path's retries ran out, or on a path without them) becomes ABORTED with a RetryInfo.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from purse.domain.errors import (
    Aborted,
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Overloaded,
    PermissionDenied,
    RateLimited,
    TimedOut,
    Unauthenticated,
    Unavailable,
    UnexpectedFailure,
)
from purse.store.failures import DEPENDENCY_FAILURES
from purse.store.postgres.conflicts import CONFLICT_FAILURES, conflict_refusal

error_domain = "purse"
# The reason of every failure of PostgreSQL or Redis (UNAVAILABLE: the same call may succeed later).
dependency_unavailable_reason = "DEPENDENCY_UNAVAILABLE"
_logger = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[DomainError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Aborted: grpc.StatusCode.ABORTED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    TimedOut: grpc.StatusCode.DEADLINE_EXCEEDED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    UnexpectedFailure: grpc.StatusCode.INTERNAL,
}


# The engine and the program's validation name fields after the domain's model
# (`check.lines[0].price`, `program.redemption_check_sum_min`); callers know the proto's
# names. Each (pattern, replacement) renames one engine path to the request
# field it came from, in this one place for every error a terminal receives.
_PROTO_FIELD_NAMES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"^(check\.lines\[\d+\])\.price$", r"\1.price_minor_units"),
        (r"^(check\.lines\[\d+\])\.quantity$", r"\1.quantity_thousandths"),
        (r"^(check\.lines\[\d+\])\.amount$", r"\1.amount_minor_units"),
        (r"^redemption\.points$", "redemption.points_hundredths"),
        (r"^redemption\.coupon_ids(\[\d+\])$", r"redemption.coupon_codes\1"),
        (
            r"^redemption\.accounts(\[\d+\])\.account_id$",
            r"redemption.account_payments\1.account_type_id",
        ),
        (r"^redemption\.accounts(\[\d+\])\.amount$", r"redemption.account_payments\1.amount"),
        (r"^redemption\.certificates(\[\d+\])\.\w+$", r"redemption.certificate_codes\1"),
        # SetProgramRules: the domain's program is the request's `rules`.
        (r"^program\.redemption_check_sum_min$", "rules.redemption_check_sum_min_minor_units"),
        (
            r"^program\.points_redemption_limit_without_pin$",
            "rules.points_redemption_limit_without_pin_hundredths",
        ),
        (
            r"^program\.(rules\[\d+\]\.selector)\.check_sum_min$",
            r"rules.\1.check_sum_min_minor_units",
        ),
        # Only the rules' own fields: `program.name` … are the Program resource's paths.
        (
            r"^program\.((?:rules|accrual_base|point_value_minor_units_per_point"
            r"|redemption_share_max_basis_points|hold_seconds|cancel_completed_sales"
            r"|currency)\b.*)$",
            r"rules.\1",
        ),
    )
)


def proto_field_path(path: str) -> str:
    """`path` in the proto's field names (engine paths renamed, others unchanged)."""
    for pattern, replacement in _PROTO_FIELD_NAMES:
        renamed, count = pattern.subn(replacement, path)
        if count:
            return renamed
    return path


def proto_violations(error: DomainError) -> list[tuple[str, str]]:
    """The error's field violations as (proto path, description)."""
    return [
        (proto_field_path(violation.field), violation.description)
        for violation in getattr(error, "violations", ())
    ]


def proto_message(error: DomainError) -> str:
    """The error's message, its leading field path (if any) in proto names."""
    violations = getattr(error, "violations", ())
    if violations and error.message.startswith(violations[0].field + ":"):
        first = violations[0].field
        return proto_field_path(first) + error.message[len(first) :]
    return error.message


def status_code_for(error: DomainError) -> grpc.StatusCode:
    """The status code of a refusal (the class itself or its nearest mapped base)."""
    for kind in type(error).__mro__:
        code = STATUS_BY_ERROR.get(kind)
        if code is not None:
            return code
    raise AssertionError(f"{type(error).__name__} has no status code in STATUS_BY_ERROR")


def _packed(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def rich_status(error: DomainError) -> grpc.Status:
    """A grpc.Status with google.rpc details for `error`."""
    code = status_code_for(error)
    details = [
        _packed(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=error_domain, metadata=error.metadata
            )
        )
    ]
    violations = proto_violations(error)
    if violations:
        details.append(
            _packed(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=field, description=description
                        )
                        for field, description in violations
                    ]
                )
            )
        )
    if isinstance(error, (RateLimited, Aborted)):
        details.append(
            _packed(
                error_details_pb2.RetryInfo(
                    retry_delay=duration_pb2.Duration(seconds=error.retry_after_seconds)
                )
            )
        )
    status = status_pb2.Status(code=code.value[0], message=proto_message(error), details=details)
    result: grpc.Status = rpc_status.to_status(status)
    return result


def unavailable_status(failure: BaseException) -> grpc.Status:
    """UNAVAILABLE for a dependency failure; the detail names no internals."""
    _logger.warning("dependency failure: %s: %s", type(failure).__name__, failure)
    status = status_pb2.Status(
        code=code_pb2.UNAVAILABLE,
        message="a storage dependency is unavailable; retry later",
        details=[
            _packed(
                error_details_pb2.ErrorInfo(
                    reason=dependency_unavailable_reason, domain=error_domain
                )
            )
        ],
    )
    result: grpc.Status = rpc_status.to_status(status)
    return result


def internal_status() -> grpc.Status:
    """INTERNAL for a bug; the details stay in the server log."""
    status = status_pb2.Status(
        code=code_pb2.INTERNAL,
        message="internal error; the server log has the details",
        details=[_packed(error_details_pb2.ErrorInfo(reason="INTERNAL", domain=error_domain))],
    )
    result: grpc.Status = rpc_status.to_status(status)
    return result


def failure_status(failure: BaseException) -> grpc.Status | None:
    """The status of a refusal, a conflict or a dependency failure; None for a bug."""
    if isinstance(failure, DomainError):
        return rich_status(failure)
    if isinstance(failure, CONFLICT_FAILURES):
        return rich_status(conflict_refusal())
    if isinstance(failure, DEPENDENCY_FAILURES):
        return unavailable_status(failure)
    return None
