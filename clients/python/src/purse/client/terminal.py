"""A terminal's client: every TerminalService RPC (generated in purse.client.v1), with a
customer identified by one keyword and ProcessChecks as a stream of checks.

    async with TerminalClient("127.0.0.1:50051", api_key="purse_key_...") as terminal:
        membership = await terminal.identify(phone="+380501234567")
        async with terminal.check_stream() as stream:
            results = await stream.process([first_check, second_check])

IdentifyCustomer is retried like any read, except when it redeems a steward code: a code
is redeemed once, so a retry could only be refused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Self

from google.protobuf.message import Message

from purse.client import v1
from purse.client.calls import Stream
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb

# At most this many checks in one ProcessChecks message (the server refuses more).
checks_per_message_max = 1_000


def identifier(
    phone: str = "",
    card_number: str = "",
    card_qr: str = "",
    app_token: str = "",
    steward_code: str = "",
) -> common_pb2.CustomerIdentifier:
    """A CustomerIdentifier from exactly one keyword."""
    given = {
        name: value
        for name, value in (
            ("phone", phone),
            ("card_number", card_number),
            ("card_qr", card_qr),
            ("app_token", app_token),
            ("steward_code", steward_code),
        )
        if value
    }
    if len(given) != 1:
        raise ValueError("give exactly one of phone, card_number, card_qr, app_token, steward_code")
    return common_pb2.CustomerIdentifier(**given)


class CheckStream:
    """ProcessChecks as a backlog of checks sees it: checks sent in batches (one message
    per 1,000 at most), each check's result read in the order the checks were sent.

    A refused check is a result whose `error` is set, as ProcessCheck would refuse it;
    only the stream failing as a whole raises PurseError (then open another and send the
    checks with no result yet again: each is idempotent by its check number).
    """

    def __init__(
        self,
        stream: Stream[pb.ProcessChecksRequest, pb.ProcessChecksResponse, v1.ProcessChecksResponse],
    ) -> None:
        self._stream = stream
        self._results: deque[v1.CheckResult] = deque()
        self._outstanding = 0

    async def __aenter__(self) -> Self:
        await self._stream.__aenter__()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def outstanding(self) -> int:
        """Checks sent whose results are still to be read."""
        return self._outstanding

    async def send(self, checks: Iterable[pb.ProcessCheckRequest]) -> None:
        """Sends the checks without waiting for their results."""
        batch = list(checks)
        for start in range(0, len(batch), checks_per_message_max):
            part = batch[start : start + checks_per_message_max]
            await self._stream.send(pb.ProcessChecksRequest(checks=part))
            self._outstanding += len(part)

    async def receive(self) -> v1.CheckResult | None:
        """The next check's result, in the order sent; None once the stream has ended."""
        while not self._results:
            answer = await self._stream.receive()
            if answer is None:
                return None
            self._results.extend(answer.results)
        self._outstanding -= 1
        return self._results.popleft()

    async def process(self, checks: Iterable[pb.ProcessCheckRequest]) -> tuple[v1.CheckResult, ...]:
        """Sends the checks and waits for their results, in order. Every result of the
        checks sent before must have been read."""
        if self._outstanding:
            raise RuntimeError(f"{self._outstanding} results of checks sent before are unread")
        await self.send(checks)
        results: list[v1.CheckResult] = []
        while self._outstanding:
            result = await self.receive()
            if result is None:
                raise RuntimeError("the stream ended before answering every check")
            results.append(result)
        return tuple(results)

    async def done_sending(self) -> None:
        """No more checks: the stream ends once every result is read."""
        await self._stream.done_sending()

    async def __aiter__(self) -> AsyncIterator[v1.CheckResult]:
        while (result := await self.receive()) is not None:
            yield result

    def close(self) -> None:
        """Ends the stream at once (results not yet read are lost)."""
        self._stream.close()


class TerminalClient(v1.TerminalServiceCalls):
    """One terminal's connection to Purse: every TerminalService RPC as a method
    (`identify_customer`, `process_check`…), plus `identify` and `check_stream`.

    TerminalClient(target, api_key=...) or TerminalClient(target, login=..., password=...).
    """

    async def identify(
        self,
        *,
        phone: str = "",
        card_number: str = "",
        card_qr: str = "",
        app_token: str = "",
        steward_code: str = "",
    ) -> v1.Membership:
        """The membership of the customer one keyword names (IdentifyCustomer). An unknown
        phone enrols the customer when the program allows it."""
        answer = await self.identify_customer(
            identifier=identifier(phone, card_number, card_qr, app_token, steward_code)
        )
        return answer.membership

    def check_stream(self) -> CheckStream:
        """ProcessChecks: send checks in batches, read each one's result in order."""
        return CheckStream(self.process_checks())

    def _retries(self, request: Message, retried: bool) -> bool:
        if isinstance(request, pb.IdentifyCustomerRequest):
            return request.identifier.WhichOneof("value") != "steward_code"
        return retried
