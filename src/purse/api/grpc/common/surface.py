"""The request surface: what every call of Purse's own services passes before a servicer
sees it, in one place for every method, unary or streaming.

grpc-python decodes a request before any servicer code runs, and a decoding failure
would be answered UNKNOWN naming protobuf's exception. `RequestGuard` registers each
method of Purse's services again with a tolerant deserializer: bytes that are not
the method's request message become a refusal object instead of an exception, and the
behavior (the servicer method, or each message a stream yields) answers it
INVALID_ARGUMENT (`REQUEST_UNDECODABLE`), naming no internals. Every service under
`purse.` is guarded (terminals, administrators, the operator): HTTP/JSON hands its
undecodable JSON over as the same refusal object, so a method left unguarded would pass
that object to its servicer as if it were the request.

The same deserializer refuses NUL characters in any string field, anywhere in a method's
one request (unary, or answered by a stream; a bidirectional stream's servicer refuses
them item by item, so that one bad check never ends its stream) (`STRING_HAS_NUL`, the
field path in proto names, `check.lines[2].title`):
PostgreSQL cannot store them, and one check in one place is surer than a check at every
field that reaches the database. Protobuf already refuses text that is not UTF-8 when it
parses, so a NUL is the only character left that no layer below can take. A NUL can only
be in the message if a zero byte is in the wire bytes, so the fields are walked only
then; the common request costs one `in` over its bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from purse.api.grpc.common.errors import rich_status
from purse.api.grpc.common.interceptors import Handler, WrappingInterceptor
from purse.domain.errors import InvalidArgument, echoed, invalid

Context = grpc.aio.ServicerContext[Any, Any]
guarded_service_prefix = "/purse."
# Nesting this deep is never a request Purse defines; protobuf's own limit is 100.
request_nesting_depth_max = 32


class Refused:
    """A request that never reaches a servicer: what to answer instead."""

    __slots__ = ("refusal",)

    def __init__(self, refusal: InvalidArgument) -> None:
        self.refusal = refusal


def tolerant(
    deserializer: Callable[[bytes], Message], refuse_nul: bool = True
) -> Callable[[bytes], Message | Refused]:
    """`deserializer` that returns a Refused instead of raising, and refuses NULs unless
    told not to (a stream message's items are refused one by one by the servicer)."""

    def deserialize(raw: bytes) -> Message | Refused:
        try:
            message = deserializer(raw)
        except Exception:
            return Refused(
                InvalidArgument(
                    message="the request is not a valid protobuf message of this method",
                    reason="REQUEST_UNDECODABLE",
                )
            )
        if refuse_nul and b"\x00" in raw:
            path = nul_field_path(message)
            if path is not None:
                return Refused(
                    invalid(path, "text may not contain NUL characters", "STRING_HAS_NUL")
                )
        return message

    return deserialize


def nul_field_path(message: Message, prefix: str = "", depth: int = 0) -> str | None:
    """The proto path of the first string field holding a NUL character, or None."""
    if depth > request_nesting_depth_max:
        return None
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                if "\x00" in str(key):
                    return f"{path}[{echoed(str(key))}]"
                found = _value_nul_path(value_field, item, f"{path}[{echoed(str(key))}]", depth)
                if found is not None:
                    return found
        elif field.is_repeated:
            for index, item in enumerate(value):
                found = _value_nul_path(field, item, f"{path}[{index}]", depth)
                if found is not None:
                    return found
        else:
            found = _value_nul_path(field, value, path, depth)
            if found is not None:
                return found
    return None


def _value_nul_path(field: FieldDescriptor, value: Any, path: str, depth: int) -> str | None:
    if field.type == FieldDescriptor.TYPE_STRING:
        return path if "\x00" in value else None
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return nul_field_path(value, f"{path}.", depth + 1)
    return None


async def _abort(context: Context, refused: Refused) -> None:
    status = rich_status(refused.refusal)
    await context.abort(status.code, status.details, status.trailing_metadata)


async def _checked(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, Refused):
            await _abort(context, request)
        yield request


class RequestGuard(WrappingInterceptor):
    """Registers every method of Purse's services with the tolerant deserializer."""

    def wrap(self, method: str, handler: Handler) -> Handler:
        if handler.request_deserializer is None or not method.startswith(guarded_service_prefix):
            return handler
        return _guarded(handler)


def _guarded(handler: Handler) -> Handler:
    assert handler.request_deserializer is not None
    deserializer = tolerant(handler.request_deserializer)
    # grpc.aio hands async behaviors over; the stubs type them as the sync API's.
    if handler.unary_unary is not None:
        unary: Any = handler.unary_unary

        async def unary_behavior(request: Any, context: Context) -> Any:
            if isinstance(request, Refused):
                await _abort(context, request)
            return await unary(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary_behavior,
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        answers: Any = handler.unary_stream

        async def answers_behavior(request: Any, context: Context) -> Any:
            if isinstance(request, Refused):
                await _abort(context, request)
            async with aclosing(answers(request, context)) as responses:
                async for response in responses:
                    yield response

        return grpc.unary_stream_rpc_method_handler(
            answers_behavior,
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_stream is not None:
        streaming: Any = handler.stream_stream
        # One bad check must not end a stream: its servicer refuses NULs check by check.
        deserializer = tolerant(handler.request_deserializer, refuse_nul=False)

        async def stream_behavior(requests: AsyncIterator[Any], context: Context) -> Any:
            async for response in streaming(_checked(requests, context), context):
                yield response

        return grpc.stream_stream_rpc_method_handler(
            stream_behavior,
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
    raise AssertionError("Purse defines no client-only streams")
