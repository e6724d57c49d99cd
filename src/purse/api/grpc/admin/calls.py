"""Every AdminService method declares the access it needs, in one decorator.

`administrator_call(Access.CHANGE)` (`administrator_stream` for a method answering with a
stream) authenticates the caller (a token from SignIn or an administrator API key),
refuses a role without that access (PERMISSION_DENIED ROLE_NOT_ALLOWED) before anything
is read, then runs the method with the errors mapped as for every contract. The access
is recorded on the method (`access_of`), so a test can check that every RPC of the
service declares one.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

import grpc

from purse.api.grpc.common.calls import Context, abort_for, bearer_credential
from purse.domain.administrators import Access, AdministratorContext

Request = TypeVar("Request")
Response = TypeVar("Response")
_access_attribute = "__purse_access__"


def administrator_call(
    access: Access,
) -> Callable[
    [Callable[[Any, Request, Context, AdministratorContext], Awaitable[Response]]],
    Callable[[Any, Request, Context], Awaitable[Response]],
]:
    def decorate(
        method: Callable[[Any, Request, Context, AdministratorContext], Awaitable[Response]],
    ) -> Callable[[Any, Request, Context], Awaitable[Response]]:
        @functools.wraps(method)
        async def wrapper(self: Any, request: Request, context: Context) -> Response:
            try:
                caller = await self.authenticator.authenticate(bearer_credential(context))
                caller.require(access)
                return await method(self, request, context, caller)
            except grpc.aio.AbortError:
                raise
            except Exception as failure:
                await abort_for(context, failure)
                raise AssertionError("abort returned") from failure

        setattr(wrapper, _access_attribute, access)
        return wrapper

    return decorate


def administrator_stream(
    access: Access,
) -> Callable[
    [Callable[[Any, Request, Context, AdministratorContext], AsyncGenerator[Response, None]]],
    Callable[[Any, Request, Context], AsyncGenerator[Response, None]],
]:
    """`administrator_call` for a method that answers with a stream: the caller checked
    before its first answer, the errors mapped wherever in the stream they come."""

    def decorate(
        method: Callable[
            [Any, Request, Context, AdministratorContext], AsyncGenerator[Response, None]
        ],
    ) -> Callable[[Any, Request, Context], AsyncGenerator[Response, None]]:
        @functools.wraps(method)
        async def wrapper(
            self: Any, request: Request, context: Context
        ) -> AsyncGenerator[Response, None]:
            try:
                caller = await self.authenticator.authenticate(bearer_credential(context))
                caller.require(access)
                async with aclosing(method(self, request, context, caller)) as answers:
                    async for answer in answers:
                        yield answer
            except grpc.aio.AbortError:
                raise
            except Exception as failure:
                await abort_for(context, failure)

        setattr(wrapper, _access_attribute, access)
        return wrapper

    return decorate


def access_of(method: object) -> Access | None:
    """The access a servicer method declared, or None."""
    value = getattr(method, _access_attribute, None)
    return value if isinstance(value, Access) else None
