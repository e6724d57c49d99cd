"""What every generated client shares: the channel, credentials, deadlines and retries.

Credentials: a long-lived API key, or a login and password where the service has SignIn:
the client signs in on first use, keeps the short-lived token, and signs in again once
when a call is refused TOKEN_EXPIRED (the refused call did nothing, so sending it again
is safe). Every unary call has a deadline. A call is retried on UNAVAILABLE, with
exponential backoff and jitter, only where its RPC is marked retried: where a retry
cannot apply anything twice. Streams have no deadline (one lives as long as its work) and
are never retried: when one fails, open another and send what has no result yet (a
stream of answers to one request, such as an export: call again).

A refusal raises `PurseError`. `request_of` builds a request from a method's keyword
arguments, so that each generated method takes the message or its fields.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import ClassVar, Generic, Self, TypeVar, cast

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from purse.client.errors import PurseError

deadline_seconds_default = 5.0
retry_attempts_max = 4
retry_backoff_seconds_first = 0.05
retry_backoff_seconds_max = 1.0
keepalive_milliseconds = 60_000
_retried_codes = (grpc.StatusCode.UNAVAILABLE,)
_token_expired = "TOKEN_EXPIRED"

RequestT = TypeVar("RequestT", bound=Message)
ResponseT = TypeVar("ResponseT", bound=Message)
ResultT = TypeVar("ResultT")


def _message_value(value: object) -> object:
    """A keyword argument's value as the message constructor takes it: datetimes become
    Timestamps (a naive one is taken as UTC), in a repeated field too."""
    if isinstance(value, datetime):
        timestamp = Timestamp()
        timestamp.FromDatetime(value)
        return timestamp
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping | Message):
        return [_message_value(item) for item in value]
    return value


def request_of(kind: type[RequestT], request: RequestT | None, /, **fields: object) -> RequestT:
    """`request` as given, or a `kind` of the fields given (those not None).

    Raises TypeError when both are given, ValueError for two members of one oneof (the
    message would keep only the last)."""
    given = {name: value for name, value in fields.items() if value is not None}
    if request is not None:
        if given:
            raise TypeError(f"give a {kind.__name__} or its fields, not both")
        return request
    chosen: dict[str, str] = {}
    for name in given:
        oneof = kind.DESCRIPTOR.fields_by_name[name].containing_oneof
        if oneof is None:
            continue
        if oneof.name in chosen:
            raise ValueError(f"{chosen[oneof.name]} and {name} are one of {oneof.name}: give one")
        chosen[oneof.name] = name
    return kind(**{name: _message_value(value) for name, value in given.items()})


class ServiceClient:
    """A connection to one of Purse's services; the generated clients add its RPCs.

    `target` is the server's host:port (plaintext); `channel` a channel of your own
    instead (TLS, options), which `close` leaves open.
    """

    signs_in: ClassVar[bool] = False

    def __init__(
        self,
        target: str = "",
        api_key: str = "",
        login: str = "",
        password: str = "",
        deadline_seconds: float = deadline_seconds_default,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        if not api_key and not (login and password):
            raise ValueError("give an API key, or a login and a password")
        if not api_key and not self.signs_in:
            raise ValueError(f"{type(self).__name__} takes an API key: its service has no SignIn")
        if channel is None and not target:
            raise ValueError("give the server's address (host:port) or a channel")
        self._owns_channel = channel is None
        self._channel = channel or grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.keepalive_time_ms", keepalive_milliseconds),
                ("grpc.enable_retries", 0),
            ],
        )
        self._api_key = api_key
        self._login = login
        self._password = password
        self._token = ""
        self._signing_in = asyncio.Lock()
        self._deadline_seconds = deadline_seconds

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the channel the client opened (one given to it stays open)."""
        if self._owns_channel:
            await self._channel.close()

    async def _new_token(self) -> str:
        """A fresh token from SignIn; generated for the services that have it."""
        raise NotImplementedError(f"{type(self).__name__} cannot sign in")

    async def _credential(self) -> str:
        if self._api_key:
            return self._api_key
        async with self._signing_in:  # concurrent first calls sign in once
            if not self._token:
                self._token = await self._new_token()
        return self._token

    def _retries(self, request: Message, retried: bool) -> bool:
        """Whether this call may be retried: as its RPC is marked; a client narrows it
        where the request decides (a steward code is redeemed once)."""
        return retried

    async def _unary(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[RequestT, ResponseT],
        request: RequestT,
        convert: Callable[[ResponseT], ResultT],
        retry: bool,
        authenticated: bool = True,
    ) -> ResultT:
        attempts = retry_attempts_max if self._retries(request, retry) else 1
        backoff = retry_backoff_seconds_first
        signed_in_again = False
        attempt = 0
        while True:
            attempt += 1
            credential = await self._credential() if authenticated else ""
            metadata = (("authorization", f"Bearer {credential}"),) if credential else ()
            try:
                response = await method(request, metadata=metadata, timeout=self._deadline_seconds)
            except grpc.aio.AioRpcError as error:
                failure = PurseError(error)
            else:
                return convert(response)
            if failure.reason == _token_expired and not self._api_key and not signed_in_again:
                signed_in_again = True
                if self._token == credential:
                    self._token = ""
                continue
            if failure.code not in _retried_codes or attempt >= attempts:
                raise failure
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, retry_backoff_seconds_max)

    async def _server_stream(
        self,
        method: grpc.aio.UnaryStreamMultiCallable[RequestT, ResponseT],
        request: RequestT,
        convert: Callable[[ResponseT], ResultT],
    ) -> AsyncIterator[ResultT]:
        """The answers to one request as they arrive. Leaving the loop early ends the
        call; a failure raises PurseError after the answers before it."""
        credential = await self._credential()
        call = method(request, metadata=(("authorization", f"Bearer {credential}"),))
        try:
            async for response in call:
                yield convert(response)
        except grpc.aio.AioRpcError as error:
            raise PurseError(error) from error
        finally:
            call.cancel()

    def _stream(
        self,
        method: grpc.aio.StreamStreamMultiCallable[RequestT, ResponseT],
        convert: Callable[[ResponseT], ResultT],
    ) -> Stream[RequestT, ResponseT, ResultT]:
        async def opened() -> grpc.aio.StreamStreamCall[RequestT, ResponseT]:
            return method(metadata=(("authorization", f"Bearer {await self._credential()}"),))

        return Stream(opened, convert)


class Stream(Generic[RequestT, ResponseT, ResultT]):
    """A bidirectional call: requests sent as they come, results read as the server
    answers them. Opened by `async with` or the first send or receive; ended by `close`
    (or leaving the `async with`), or read to its end after `done_sending`.

        async with client.process_checks() as stream:
            await stream.send(request)
            result = await stream.receive()
    """

    def __init__(
        self,
        opener: Callable[[], Awaitable[grpc.aio.StreamStreamCall[RequestT, ResponseT]]],
        convert: Callable[[ResponseT], ResultT],
    ) -> None:
        self._opener = opener
        self._convert = convert
        self._call: grpc.aio.StreamStreamCall[RequestT, ResponseT] | None = None

    async def _opened(self) -> grpc.aio.StreamStreamCall[RequestT, ResponseT]:
        if self._call is None:
            self._call = await self._opener()
        return self._call

    async def __aenter__(self) -> Self:
        await self._opened()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def send(self, request: RequestT) -> None:
        call = await self._opened()
        try:
            await call.write(request)
        except grpc.aio.AioRpcError as error:
            raise PurseError(error) from error

    async def done_sending(self) -> None:
        """Tells the server nothing more is coming: it ends the stream once it has
        answered everything sent."""
        await (await self._opened()).done_writing()

    async def receive(self) -> ResultT | None:
        """The next answer, or None once the server has ended the stream."""
        call = await self._opened()
        try:
            response = await call.read()
        except grpc.aio.AioRpcError as error:
            raise PurseError(error) from error
        if response is grpc.aio.EOF:
            return None
        # The stubs type a read as `object` (EOF or the response).
        return self._convert(cast(ResponseT, response))

    async def __aiter__(self) -> AsyncIterator[ResultT]:
        while (result := await self.receive()) is not None:
            yield result

    def close(self) -> None:
        """Ends the stream at once if the server has not ended it."""
        if self._call is not None and not self._call.done():
            self._call.cancel()
