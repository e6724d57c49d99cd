"""Authentication and error mapping around every servicer method, for all contracts.

`authenticated_call` resolves the caller from the `authorization` metadata (the
servicer's `authenticator` turns the bearer credential into a terminal or an
administrator), runs the method, and turns refusals into rich statuses through the one
table in `errors.py`; `public_call` does the error mapping alone (sign-in). Refusals get
their rich status, conflicts ABORTED, dependency failures UNAVAILABLE; anything else is a
bug: it is logged with its traceback and the caller gets INTERNAL, no internals. At
DEBUG level every refusal is logged too (its status code and reason, not its message,
which may name a customer), with the call's trace id when tracing is on: the line that
says why a traced call failed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from purse.api.grpc.common.errors import failure_status, internal_status

Request = TypeVar("Request")
Response = TypeVar("Response")
Context = grpc.aio.ServicerContext[Any, Any]
_bearer_scheme = "bearer "
_logger = logging.getLogger(__name__)


def bearer_credential(context: Context) -> str:
    """The credential after 'Bearer ' in the authorization metadata, or ''."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            if value[: len(_bearer_scheme)].lower() == _bearer_scheme:
                return value[len(_bearer_scheme) :].strip()
            return ""
    return ""


async def abort_for(context: Context, failure: BaseException) -> None:
    """Abort the call with the status a refusal or a failure deserves.

    Refusals get their rich status, conflicts ABORTED, dependency failures UNAVAILABLE;
    anything else is a bug: it is logged with its traceback and the caller gets INTERNAL,
    no internals.
    """
    status = failure_status(failure)
    if status is None:
        _logger.error("unexpected failure", exc_info=failure)
        status = internal_status()
    elif _logger.isEnabledFor(logging.DEBUG):
        _logger.debug("refused %s (%s)", status.code.name, getattr(failure, "reason", ""))
    await context.abort(status.code, status.details, status.trailing_metadata)


def public_call(
    method: Callable[[Any, Request, Context], Awaitable[Response]],
) -> Callable[[Any, Request, Context], Awaitable[Response]]:
    """Error mapping for calls that need no credentials (sign-in)."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Request, context: Context) -> Response:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as failure:
            await abort_for(context, failure)
            raise AssertionError("abort returned") from failure

    return wrapper


Caller = TypeVar("Caller")


def authenticated_call(
    method: Callable[[Any, Request, Context, Caller], Awaitable[Response]],
) -> Callable[[Any, Request, Context], Awaitable[Response]]:
    """Authentication and error mapping around a servicer method: the servicer's
    `authenticator` turns the bearer credential into the caller the method receives."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Request, context: Context) -> Response:
        try:
            caller = await self.authenticator.authenticate(bearer_credential(context))
            return await method(self, request, context, caller)
        except grpc.aio.AbortError:
            raise
        except Exception as failure:
            await abort_for(context, failure)
            raise AssertionError("abort returned") from failure

    return wrapper
