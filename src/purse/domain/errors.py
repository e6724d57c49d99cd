"""Typed domain exceptions: bad input and business refusals.

Every refusal the product can give is one of these classes. The API layer maps each
class to a transport status in exactly one table (`purse.api.grpc.common.errors`).
`reason` is a stable, machine-readable UPPER_SNAKE word that clients may branch on, one of
the catalogue's (`purse.domain.reasons`), which also names the status each reason is
answered with (a test keeps the catalogue and the table agreeing); `message` is for people.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from purse.domain.reasons import ERROR_REASONS

# Field violations one error carries; the rest are counted in its metadata
# (`violations_omitted`), so an error's size never grows with the request.
violations_per_error_max = 20
# Longest message an error carries (longer ones are cut, with an ellipsis).
error_message_characters_max = 512


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One wrong field: `field` is a dotted path into the request (`check.lines[2].price`)."""

    field: str
    description: str


@dataclass(slots=True)
class DomainError(Exception):
    """Base of every refusal; never raised itself."""

    message: str
    # Every refusal names its reason; only InvalidArgument and UnexpectedFailure, whose
    # generic reasons are catalogued, have one by default.
    reason: str
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.reason in ERROR_REASONS, f"{self.reason} is not in the reasons catalogue"
        if len(self.message) > error_message_characters_max:
            self.message = self.message[: error_message_characters_max - 1] + "…"
        violations = getattr(self, "violations", ())
        if len(violations) > violations_per_error_max:
            self.metadata = {
                **self.metadata,
                "violations_omitted": str(len(violations) - violations_per_error_max),
            }
            object.__setattr__(self, "violations", violations[:violations_per_error_max])
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message


@dataclass(slots=True)
class InvalidArgument(DomainError):
    """The request itself is malformed; `violations` name each wrong field."""

    reason: str = "INVALID_ARGUMENT"
    violations: tuple[FieldViolation, ...] = ()


@dataclass(slots=True)
class NotFound(DomainError):
    """A thing the request names does not exist (in the caller's business)."""


@dataclass(slots=True)
class AlreadyExists(DomainError):
    """The request would create something that exists already."""


@dataclass(slots=True)
class FailedPrecondition(DomainError):
    """The request is well-formed but the state of things refuses it."""

    violations: tuple[FieldViolation, ...] = ()


@dataclass(slots=True)
class Unauthenticated(DomainError):
    """Missing, wrong or expired credentials."""


@dataclass(slots=True)
class PermissionDenied(DomainError):
    """The caller is known but may not do this."""


@dataclass(slots=True)
class RateLimited(DomainError):
    """Too many attempts; `retry_after_seconds` says when trying again makes sense."""

    retry_after_seconds: int = 60


@dataclass(slots=True)
class Aborted(DomainError):
    """A concurrent change made this one roll back; nothing was applied, and the same
    request may succeed when tried again after `retry_after_seconds`."""

    retry_after_seconds: int = 1


@dataclass(slots=True)
class Overloaded(DomainError):
    """The server cannot take more work before the caller's deadline."""


@dataclass(slots=True)
class TimedOut(DomainError):
    """A time limit of the call itself ran out (a stream idle or open too long); nothing
    in flight was cut off, and a new call may continue."""


@dataclass(slots=True)
class Unavailable(DomainError):
    """A dependency is down; the same request may succeed later."""


@dataclass(slots=True)
class UnexpectedFailure(DomainError):
    """Something failed that no input should make fail (a bug): the one member of a group
    it happened to is answered INTERNAL, its neighbours are not affected."""

    reason: str = "INTERNAL"


# How much of a value a caller sent an error message may quote back.
echoed_characters_max = 64


def echoed(value: str) -> str:
    """`value` quoted for an error message, cut to `echoed_characters_max` characters with
    an ellipsis: a message never grows with what the caller sent."""
    if len(value) <= echoed_characters_max:
        return repr(value)
    return repr(value[: echoed_characters_max - 1]) + "…"


def invalid(field_path: str, description: str, reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    """Shorthand for the common single-field InvalidArgument."""
    return InvalidArgument(
        message=f"{field_path}: {description}",
        reason=reason,
        violations=(FieldViolation(field_path, description),),
    )
