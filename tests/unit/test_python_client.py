"""purse-client without a server: results read from messages, requests built from
keywords, refusals unpacked, and the rules of retrying, signing in again and streaming
checks, over a channel that answers from a script."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from purse.client import PurseError, TerminalClient, calls, identifier
from purse.client.calls import Stream, request_of
from purse.client.terminal import CheckStream, checks_per_message_max
from purse.client.v1 import (
    CheckResult,
    Pocket,
    PocketKind,
    ProcessCheckResponse,
    ProcessChecksResponse,
    TransactionStatus,
)
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb

expiry = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def refusal(
    code: grpc.StatusCode, reason: str = "", fields: dict[str, str] | None = None
) -> grpc.aio.AioRpcError:
    """An error as the server's status details carry it."""
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message="refused")
    if reason:
        status.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason, domain="purse"))
    if fields:
        bad_request = error_details_pb2.BadRequest()
        for path, description in fields.items():
            bad_request.field_violations.add(field=path, description=description)
        status.details.add().Pack(bad_request)
    return grpc.aio.AioRpcError(
        code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString())),
        "refused",
    )


def test_a_result_reads_timestamps_as_utc_datetimes_and_enums_as_members() -> None:
    raw = common_pb2.Pocket(pocket_id=7, kind=common_pb2.POCKET_KIND_POINTS, available=250)
    raw.next_expiry_time.FromDatetime(expiry)
    pocket = Pocket.of(raw)
    assert pocket.next_expiry_time == expiry
    assert pocket.next_expiry_time is not None
    assert pocket.next_expiry_time.tzinfo is UTC
    assert pocket.kind is PocketKind.POINTS
    assert pocket.available == 250
    assert pocket.raw is raw


def test_fields_with_presence_read_none_when_unset_and_their_value_when_set() -> None:
    unset = Pocket.of(common_pb2.Pocket())
    limited = Pocket.of(common_pb2.Pocket(redemption_limit_without_pin=0))
    assert unset.next_expiry_time is None
    assert unset.redemption_limit_without_pin is None
    assert limited.redemption_limit_without_pin == 0


def test_a_number_the_client_does_not_know_reads_as_an_unknown_member() -> None:
    pocket = Pocket.of(common_pb2.Pocket(kind=99))  # type: ignore[arg-type]
    assert pocket.kind == 99
    assert pocket.kind.name == "UNKNOWN_99"
    assert isinstance(pocket.kind, PocketKind)


def test_repeated_fields_are_tuples_of_results_and_messages_read_as_protobuf_reads_them() -> None:
    raw = pb.ProcessCheckResponse(
        membership=common_pb2.Membership(
            phone="+380501234567", pockets=[common_pb2.Pocket(pocket_id=1)]
        )
    )
    answer = ProcessCheckResponse.of(raw)
    assert answer.membership.pockets == (Pocket.of(raw.membership.pockets[0]),)
    assert answer.transaction.transaction_id == 0  # unset: protobuf's defaults
    assert answer.transaction.status is TransactionStatus.UNSPECIFIED
    assert answer.transaction.receipt.lines == ()


def test_a_oneof_reads_its_chosen_member_and_none_for_the_others() -> None:
    raw = pb.CheckResult(
        check_number="C-1",
        error=pb.CheckError(code=3, reason="PHONE_INVALID", field_violations={"a": "b"}),
    )
    result = CheckResult.of(raw)
    assert result.processed is None
    assert result.error is not None
    assert result.error.reason == "PHONE_INVALID"
    assert result.error.field_violations == {"a": "b"}


def test_results_are_frozen_and_equal_by_their_fields() -> None:
    first = Pocket.of(common_pb2.Pocket(pocket_id=3))
    assert first == Pocket.of(common_pb2.Pocket(pocket_id=3))
    assert first != Pocket.of(common_pb2.Pocket(pocket_id=4))
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.pocket_id = 5  # type: ignore[misc]


def test_a_request_is_built_from_the_keywords_given_with_datetimes_as_timestamps() -> None:
    kyiv = timezone(timedelta(hours=2))
    request = request_of(
        pb.ListTransactionsRequest,
        None,
        page_size=10,
        page_token=None,
        status=TransactionStatus.PENDING,
        start_time=expiry.astimezone(kyiv),
    )
    assert request.page_size == 10
    assert request.status == pb.TRANSACTION_STATUS_PENDING
    assert request.start_time.ToDatetime(UTC) == expiry
    assert not request.page_token


def test_a_request_is_the_message_or_its_fields_and_one_member_of_a_oneof() -> None:
    given = pb.SearchCustomersRequest(phone_prefix="0501")
    assert request_of(pb.SearchCustomersRequest, given) is given
    with pytest.raises(TypeError, match="not both"):
        request_of(pb.SearchCustomersRequest, given, page_size=5)
    with pytest.raises(ValueError, match="phone_prefix and card_number"):
        request_of(pb.SearchCustomersRequest, None, phone_prefix="0501", card_number="X1")


def test_a_refusal_carries_its_code_reason_and_wrong_fields() -> None:
    error = PurseError(
        refusal(grpc.StatusCode.INVALID_ARGUMENT, "PHONE_INVALID", {"identifier.phone": "bad"})
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "PHONE_INVALID"
    assert error.field_violations == {"identifier.phone": "bad"}
    assert error.retry_after_seconds == 0
    assert str(error) == "INVALID_ARGUMENT PHONE_INVALID: refused"


class ScriptedChannel:
    """Answers each RPC from a script: per method name, what each call raises or answers
    (a callable of the request and its authorization). Records every call."""

    def __init__(self, script: dict[str, list[Callable[[Any, str], Message]]]) -> None:
        self.script = script
        self.calls: list[tuple[str, str]] = []

    def unary_unary(self, path: str, *arguments: object, **options: object) -> object:
        method = path.rpartition("/")[2]

        async def call(request: Any, **options: Any) -> Message:
            authorization = dict(options["metadata"]).get("authorization", "")
            self.calls.append((method, authorization))
            return self.script[method].pop(0)(request, authorization)

        return call

    def stream_stream(self, path: str, *arguments: object, **options: object) -> object:
        return None


def raising(error: grpc.aio.AioRpcError) -> Callable[[Any, str], Message]:
    def answer(request: Any, authorization: str) -> Message:
        raise error

    return answer


def answering(message: Message) -> Callable[[Any, str], Message]:
    return lambda request, authorization: message


def scripted_terminal(
    channel: ScriptedChannel, api_key: str = "", login: str = "", password: str = ""
) -> TerminalClient:
    return TerminalClient(
        api_key=api_key, login=login, password=password, channel=cast(grpc.aio.Channel, channel)
    )


unavailable = raising(refusal(grpc.StatusCode.UNAVAILABLE))
identified = answering(pb.IdentifyCustomerResponse(membership=common_pb2.Membership(phone="+1")))


async def test_a_read_is_retried_while_the_server_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(calls, "retry_backoff_seconds_first", 0.0)
    channel = ScriptedChannel({"IdentifyCustomer": [unavailable, unavailable, identified]})
    membership = await scripted_terminal(channel, api_key="key").identify(phone="+1")
    assert membership.phone == "+1"
    assert len(channel.calls) == 3


async def test_a_steward_code_is_sent_once_whatever_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(calls, "retry_backoff_seconds_first", 0.0)
    channel = ScriptedChannel({"IdentifyCustomer": [unavailable, identified]})
    with pytest.raises(PurseError) as refused:
        await scripted_terminal(channel, api_key="key").identify(steward_code="482913")
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(channel.calls) == 1


async def test_a_change_that_could_apply_twice_is_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(calls, "retry_backoff_seconds_first", 0.0)
    channel = ScriptedChannel({"ConfirmTransaction": [unavailable]})
    with pytest.raises(PurseError):
        await scripted_terminal(channel, api_key="key").confirm_transaction(
            transaction_id=1, pin="123456"
        )
    assert len(channel.calls) == 1


async def test_the_client_signs_in_once_and_again_when_its_token_expires() -> None:
    def token(value: str) -> Callable[[Any, str], Message]:
        return answering(pb.SignInResponse(token=value))

    expired = raising(refusal(grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED"))
    settings = answering(pb.GetTerminalSettingsResponse(currency="UAH"))
    channel = ScriptedChannel(
        {
            "SignIn": [token("first"), token("second")],
            "GetTerminalSettings": [settings, expired, settings],
        }
    )
    terminal = scripted_terminal(channel, login="till", password="secret")
    await asyncio.gather(terminal.get_terminal_settings(), terminal.get_terminal_settings())
    assert channel.calls == [
        ("SignIn", ""),
        ("GetTerminalSettings", "Bearer first"),
        ("GetTerminalSettings", "Bearer first"),
        ("SignIn", ""),
        ("GetTerminalSettings", "Bearer second"),
    ]


def test_the_client_wants_exactly_one_identifier_and_some_credentials() -> None:
    with pytest.raises(ValueError, match="API key"):
        TerminalClient("127.0.0.1:1")
    with pytest.raises(ValueError, match="exactly one"):
        identifier()
    with pytest.raises(ValueError, match="exactly one"):
        identifier(phone="+380501234567", card_number="X1")
    assert identifier(card_qr="q").WhichOneof("value") == "card_qr"


class EchoingCall:
    """A ProcessChecks call whose server answers each message with a result per check."""

    def __init__(self) -> None:
        self.sent: list[pb.ProcessChecksRequest] = []
        self.answers: asyncio.Queue[object] = asyncio.Queue()

    async def write(self, request: pb.ProcessChecksRequest) -> None:
        self.sent.append(request)
        results = [pb.CheckResult(check_number=check.check_number) for check in request.checks]
        await self.answers.put(pb.ProcessChecksResponse(results=results))

    async def done_writing(self) -> None:
        await self.answers.put(grpc.aio.EOF)

    async def read(self) -> object:
        return await self.answers.get()

    def done(self) -> bool:
        return False

    def cancel(self) -> bool:
        return True


def echoing_stream(call: EchoingCall) -> CheckStream:
    async def opened() -> grpc.aio.StreamStreamCall[
        pb.ProcessChecksRequest, pb.ProcessChecksResponse
    ]:
        return cast(grpc.aio.StreamStreamCall[Any, Any], call)

    return CheckStream(Stream(opened, ProcessChecksResponse.of))


async def test_the_check_stream_sends_a_thousand_checks_a_message_at_most_answered_in_order() -> (
    None
):
    call = EchoingCall()
    numbers = [f"N-{index}" for index in range(2 * checks_per_message_max + 500)]
    async with echoing_stream(call) as stream:
        results = await stream.process(pb.ProcessCheckRequest(check_number=n) for n in numbers)
    assert [len(message.checks) for message in call.sent] == [1_000, 1_000, 500]
    assert [result.check_number for result in results] == numbers


async def test_the_check_stream_reads_to_its_end_after_the_last_checks() -> None:
    call = EchoingCall()
    async with echoing_stream(call) as stream:
        await stream.send([pb.ProcessCheckRequest(check_number="A")])
        await stream.send([pb.ProcessCheckRequest(check_number="B")])
        with pytest.raises(RuntimeError, match="2 results"):
            await stream.process([pb.ProcessCheckRequest(check_number="C")])
        await stream.done_sending()
        assert [result.check_number async for result in stream] == ["A", "B"]
        assert stream.outstanding == 0
