"""The load generator: named workloads, sent from N worker processes, into HDR histograms.

Contract:

- A *workload* is one kind of call with a fixed request shape (see `WORKLOADS`):
  `empty` (the echo server's empty unary call), `identify` (IdentifyCustomer by phone),
  `calculate` (CalculateCheck of a 10-line check), `process` (ProcessCheck of the same
  check with a unique `check_number` per call) and `process-stream` (ProcessChecks:
  `checks_per_message` checks per request message on long-lived streams; one *call* is
  one message and its response, one *item* one check). `http-identify` and
  `http-process` send the calls of `identify` and `process` over HTTP/1.1 instead
  (`HTTP_WORKLOADS`): POSTs to `Target.http_address` of the same request in protobuf's
  canonical JSON mapping, on kept-alive connections (`http_client`), at most as many per
  worker as its share of `concurrency` in either mode. Call k (numbered across all
  workers) is for customer k × s mod n of the n in `Target.phones`, s a step near n × 0.618
  with no factor in common with n: every customer once in n calls, so calls in flight never
  share one, and consecutive calls far apart in the list, so that a large business is
  visited all over (its PostgreSQL working set is the whole business, not its first rows).
  `PhoneNumbers` stands for a million phones in a few bytes.
- Latency mode is an open model: call k of a worker is due at start + k / rate; its
  latency runs from that due time to the answer, so a server that stalls cannot slow the
  sender down and hide the stall (no coordinated omission). At most
  `outstanding_calls_max` calls per worker are in flight; a due call waits for a slot
  (over HTTP/1.1, for a connection) and the wait counts in its latency. Calls still
  unsent `backlog_grace_seconds` after the
  end are not sent and are counted as CLIENT_BACKLOG errors. A run given a `stop` event
  sends no call due after the event is set (the run then ends early, uncounted).
- Throughput mode is a closed loop: `concurrency` calls in flight (streams, for the
  stream workload), each slot starting its next call when the previous one answers;
  latency runs from the actual send.
- Every call has a deadline (`call_deadline_seconds`) and every run a duration: a run
  ends by itself, and workers that have not reported by duration + deadline + margin are
  killed and the run fails.
- Latencies of successful calls are recorded in microseconds into one HdrHistogram per
  worker and merged in the parent; failures are counted by gRPC status code name (for
  the stream, per check, from each result's `CheckError.code`; over HTTP, only 2xx is
  OK and any other answer counts by its Connect error's code).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import queue
import secrets
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol, overload

import grpc
import orjson
from google.protobuf import json_format
from hdrh.histogram import HdrHistogram

from benchmarks.load import http_client
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb

# Limits, unit last.
call_deadline_seconds = 10.0
outstanding_calls_max = 1_000  # per worker, latency mode
backlog_grace_seconds = 0.5
worker_start_seconds_max = 60.0
worker_report_margin_seconds = 30.0
worker_exit_seconds_max = 5.0
stream_close_seconds_max = 2.0
progress_interval_seconds = 1.0
checks_per_message_max = 1_000  # the contract's most checks per ProcessChecksRequest
message_bytes_max = 64 * 1024 * 1024
histogram_lowest_microseconds = 1
histogram_highest_microseconds = 120_000_000
histogram_significant_digits = 3
# Warm-up calls get sequence numbers (hence check numbers) of their own.
warm_up_sequence_offset = 1_000_000_000
# Where the step through the customers starts looking: the golden ratio's fraction puts
# consecutive calls as far apart as a fixed step can.
spread_fraction = 0.618_033_988_75
phone_index_digits = 7
# Requests kept ready per worker, one per customer (about 350 bytes each), so that the
# demo business's customers cost a lookup from their second call on.
prepared_customers_max = 20_000

echo_service = "purse.bench.v1.Echo"
echo_method = f"/{echo_service}/Empty"
_terminal_service = "/purse.v1.TerminalService/"

# Each HTTP/JSON workload follows the gRPC one it sends the calls of, so that a run
# measures the two side by side on the same server and data.
WORKLOADS: dict[str, str] = {
    "empty": echo_method,
    "identify": _terminal_service + "IdentifyCustomer",
    "http-identify": _terminal_service + "IdentifyCustomer",
    "calculate": _terminal_service + "CalculateCheck",
    "process": _terminal_service + "ProcessCheck",
    "http-process": _terminal_service + "ProcessCheck",
    "process-stream": _terminal_service + "ProcessChecks",
}
STREAMING_WORKLOADS = frozenset({"process-stream"})
# HTTP/JSON workloads: the gRPC workload whose calls each sends, as HTTP/1.1 POSTs of the
# request in protobuf's canonical JSON mapping.
HTTP_WORKLOADS: dict[str, str] = {"http-identify": "identify", "http-process": "process"}
Mode = Literal["latency", "throughput"]

# The 10-line check: the demo coffee shop's goods and goods it does not know (those are
# uncategorised), (product code, price in minor units, quantity in thousandths).
check_lines = (
    ("ESPRESSO", 4_500, 2_000),
    ("CAPPUCCINO", 6_500, 1_000),
    ("LATTE", 7_000, 1_000),
    ("CROISSANT", 5_500, 3_000),
    ("ESPRESSO", 4_500, 1_000),
    ("SANDWICH", 9_900, 1_000),
    ("WATER", 2_500, 2_000),
    ("COOKIE", 1_800, 4_000),
    ("TEA", 3_900, 1_000),
    ("CAKE", 8_500, 1_000),
)

_code_names = {code.value[0]: code.name for code in grpc.StatusCode}
_phone_field = common_pb2.CustomerIdentifier.DESCRIPTOR.fields_by_name["phone"].number
_phone_json_name = common_pb2.CustomerIdentifier.DESCRIPTOR.fields_by_name["phone"].json_name


@dataclass(frozen=True)
class PhoneNumbers(Sequence[str]):
    """`size` phone numbers: `prefix`, then the index in `phone_index_digits` digits."""

    prefix: str
    size: int

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(self.size))]
        if not -self.size <= index < self.size:
            raise IndexError(f"phone {index} of {self.size}")
        return f"{self.prefix}{index % self.size:0{phone_index_digits}d}"


@dataclass(frozen=True)
class Target:
    """Where to send, as whom, and which customers to use (phones already enrolled)."""

    address: str
    api_key: str = ""
    phones: Sequence[str] = ()
    currency: str = "UAH"
    # host:port of the server's HTTP port, for the HTTP/JSON workloads.
    http_address: str = ""


def spread_step(count: int) -> int:
    """The step through `count` customers: the first number from count × 0.618 up that
    shares no factor with `count`, so that k × step mod count visits each once."""
    step = max(1, round(count * spread_fraction))
    while math.gcd(step, count) != 1:
        step += 1
    return step


@dataclass(frozen=True)
class LoadSpec:
    """One run of one workload."""

    workload: str
    mode: Mode
    duration_seconds: float
    workers: int = 1
    # Latency mode: calls (stream messages) per second, all workers together.
    rate_per_second: float = 0.0
    # Throughput mode: calls in flight, all workers together; for the stream workload
    # also the number of streams in either mode.
    concurrency: int = 64
    checks_per_message: int = 100
    warm_up_seconds: float = 1.0
    # Prefix of check numbers; unique per run so that no check number is ever reused.
    run_id: str = ""

    def __post_init__(self) -> None:
        if self.workload not in WORKLOADS:
            raise ValueError(f"unknown workload {self.workload!r}; known: {', '.join(WORKLOADS)}")
        if self.duration_seconds <= 0 or self.workers < 1 or self.concurrency < self.workers:
            raise ValueError("duration must be positive, workers >= 1, concurrency >= workers")
        if self.mode == "latency" and self.rate_per_second <= 0:
            raise ValueError("latency mode needs a positive rate_per_second")
        if not 1 <= self.checks_per_message <= checks_per_message_max:
            raise ValueError(f"checks_per_message must be 1 to {checks_per_message_max}")


class Outcome(NamedTuple):
    """What one call came to: its status, the items applied, and per-item refusals."""

    code: str
    items_ok: int
    item_errors: tuple[tuple[str, int], ...] = ()


def new_run_id() -> str:
    return secrets.token_hex(4)


def _varint(value: int) -> bytes:
    encoded = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            encoded.append(low | 0x80)
        else:
            encoded.append(low)
            return bytes(encoded)


def _length_delimited(field_number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field; messages concatenated this way merge."""
    wire_type_length_delimited = 2
    return _varint(field_number << 3 | wire_type_length_delimited) + _varint(len(payload)) + payload


def ten_line_check(currency: str) -> pb.Check:
    check = pb.Check(currency=currency)
    for position, (code, price, quantity) in enumerate(check_lines, start=1):
        check.lines.add(
            position=position,
            product_code=code,
            title=code.title(),
            price_minor_units=price,
            quantity_thousandths=quantity,
            amount_minor_units=price * quantity // 1000,  # every quantity is whole units
        )
    return check


class Requests:
    """Serialized request messages of one worker, by sequence number (cheap per call).

    A request is a prepared message without `identifier` (nor `check_number`) with those
    fields put in front: protobuf parses concatenated messages as their merge. For the
    HTTP/JSON workloads it is the same message in protobuf's canonical JSON mapping, put
    together the same way: those fields' members, then the prepared message's. A
    customer's is kept once made, for the first `prepared_customers_max` customers.
    """

    def __init__(
        self,
        workload: str,
        target: Target,
        run_id: str,
        worker: int,
        workers: int,
        per_message: int,
    ) -> None:
        if workload != "empty" and not target.phones:
            raise ValueError(f"workload {workload!r} needs customer phones")
        self._json = workload in HTTP_WORKLOADS
        self._workload = HTTP_WORKLOADS.get(workload, workload)
        self._prefix = f"{run_id}-{worker}-"
        self._worker = worker
        self._workers = workers
        self.per_message = per_message
        self._phones = target.phones
        self._step = spread_step(len(target.phones))
        check = ten_line_check(target.currency)
        if self._workload == "identify":
            message: Any = pb.IdentifyCustomerRequest()
        elif self._workload == "calculate":
            message = pb.CalculateCheckRequest(check=check)
        else:
            message = pb.ProcessCheckRequest(check=check)
        identifier = message.DESCRIPTOR.fields_by_name["identifier"]
        self._identifier_field = identifier.number
        self._body: bytes = message.SerializeToString()
        if self._json:
            # The members of the JSON object, without its braces (none for identify).
            self._body = orjson.dumps(json_format.MessageToDict(message))[1:-1]
            self._identifier_member = b'"%b":{"%b":' % (
                identifier.json_name.encode(),
                _phone_json_name.encode(),
            )
            number = pb.ProcessCheckRequest.DESCRIPTOR.fields_by_name["check_number"]
            self._number_member = b'{"%b":' % number.json_name.encode()
        self._prepared_by_customer: dict[int, bytes] = {}

    def _prepared(self, index: int) -> bytes:
        customer = index * self._step % len(self._phones)
        prepared = self._prepared_by_customer.get(customer)
        if prepared is None:
            phone = self._phones[customer]
            if self._json:
                rest = b"," + self._body if self._body else b""
                prepared = self._identifier_member + orjson.dumps(phone) + b"}" + rest + b"}"
            else:
                identifier = _length_delimited(_phone_field, phone.encode())
                prepared = _length_delimited(self._identifier_field, identifier) + self._body
            if len(self._prepared_by_customer) < prepared_customers_max:
                self._prepared_by_customer[customer] = prepared
        return prepared

    def message(self, sequence: int) -> bytes:
        """Call `sequence`'s request: binary protobuf, or JSON for an HTTP workload."""
        if self._workload == "empty":
            return b""
        call_index = sequence * self._workers + self._worker  # unique across workers
        if self._workload in ("identify", "calculate"):
            prepared = self._prepared(call_index)
            return b"{" + prepared if self._json else prepared
        number = f"{self._prefix}{sequence}"
        if self._workload == "process":
            if self._json:
                return (
                    self._number_member + orjson.dumps(number) + b"," + self._prepared(call_index)
                )
            return _length_delimited(1, number.encode()) + self._prepared(call_index)
        checks = []
        for offset in range(self.per_message):
            one = _length_delimited(1, f"{number}-{offset}".encode())
            checks.append(one + self._prepared(call_index * self.per_message + offset))
        return b"".join(_length_delimited(1, check) for check in checks)


class Caller(Protocol):
    async def call(self, sequence: int) -> Outcome: ...

    async def close(self) -> None: ...


class UnaryCaller:
    """One unary call per `call`, bytes in and out (the client decodes nothing)."""

    def __init__(
        self, channel: grpc.aio.Channel, method: str, requests: Requests, metadata: Any
    ) -> None:
        self._method: Any = channel.unary_unary(method)  # no serializers: bytes as they are
        self._requests = requests
        self._metadata = metadata

    async def call(self, sequence: int) -> Outcome:
        try:
            await self._method(
                self._requests.message(sequence),
                metadata=self._metadata,
                timeout=call_deadline_seconds,
            )
        except grpc.aio.AioRpcError as error:
            return Outcome(error.code().name, 0)
        return Outcome("OK", 1)

    async def close(self) -> None:
        return None


class StreamCaller:
    """One request message and its response per `call`, on up to `streams_max` streams.

    A stream that fails is replaced by a new one; responses are decoded to count each
    check's result (a check refused on the stream is an error of its own).
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        method: str,
        requests: Requests,
        metadata: Any,
        streams_max: int,
        lifetime_seconds: float,
    ) -> None:
        self._open: Any = channel.stream_stream(
            method, response_deserializer=pb.ProcessChecksResponse.FromString
        )
        self._requests = requests
        self._metadata = metadata
        self._lifetime_seconds = lifetime_seconds
        self._idle: asyncio.Queue[Any] = asyncio.Queue()
        self._opened: list[Any] = []
        self._streams_max = streams_max

    def _new_stream(self) -> Any:
        stream = self._open(metadata=self._metadata, timeout=self._lifetime_seconds)
        self._opened.append(stream)
        return stream

    async def _acquire(self) -> Any:
        if self._idle.empty() and len(self._opened) < self._streams_max:
            return self._new_stream()
        return await self._idle.get()

    def _replace(self, stream: Any) -> None:
        stream.cancel()
        self._opened.remove(stream)
        self._idle.put_nowait(self._new_stream())

    async def call(self, sequence: int) -> Outcome:
        stream = await self._acquire()
        try:
            async with asyncio.timeout(call_deadline_seconds):
                await stream.write(self._requests.message(sequence))
                response = await stream.read()
        except grpc.aio.AioRpcError as error:
            self._replace(stream)
            return Outcome(error.code().name, 0)
        except TimeoutError:
            self._replace(stream)
            return Outcome(grpc.StatusCode.DEADLINE_EXCEEDED.name, 0)
        if response is grpc.aio.EOF:
            code = await stream.code()
            self._replace(stream)
            return Outcome(code.name if code != grpc.StatusCode.OK else "STREAM_ENDED", 0)
        self._idle.put_nowait(stream)
        return _stream_outcome(response, self._requests)

    async def close(self) -> None:
        for stream in self._opened:
            try:
                async with asyncio.timeout(stream_close_seconds_max):
                    await stream.done_writing()
                    while await stream.read() is not grpc.aio.EOF:
                        pass
            except (grpc.aio.AioRpcError, TimeoutError):
                stream.cancel()


def _stream_outcome(response: pb.ProcessChecksResponse, requests: Requests) -> Outcome:
    refusals: Counter[str] = Counter()
    applied = 0
    for result in response.results:
        if result.WhichOneof("outcome") == "processed":
            applied += 1
        else:
            refusals[_code_names.get(result.error.code, f"CODE_{result.error.code}")] += 1
    missing = requests.per_message - len(response.results)
    if missing > 0:
        refusals["MISSING_RESULTS"] += missing
    return Outcome("OK", applied, tuple(refusals.items()))


def _metadata(target: Target) -> tuple[tuple[str, str], ...] | None:
    return (("authorization", f"Bearer {target.api_key}"),) if target.api_key else None


channel_options = (
    ("grpc.max_receive_message_length", message_bytes_max),
    ("grpc.max_send_message_length", message_bytes_max),
    # Each worker's channel opens its own connection rather than sharing one per process.
    ("grpc.use_local_subchannel_pool", 1),
    # A retried call would be measured as one: the generator retries nothing.
    ("grpc.enable_retries", 0),
)


class HttpCaller:
    """One HTTP/1.1 POST of the JSON request per `call`, on up to `connections_max`
    kept-alive connections; 2xx is OK, any other answer counts by its gRPC code name
    (`http_client.code_name`). Answers are not decoded beyond an error's code."""

    def __init__(
        self, address: str, method: str, requests: Requests, api_key: str, connections_max: int
    ) -> None:
        headers = {
            "content-type": "application/json",
            # The deadline, as a gRPC call carries it in grpc-timeout.
            "connect-timeout-ms": str(round(call_deadline_seconds * 1000)),
        }
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._request = http_client.HttpRequest(address, method, headers)
        self._connections = http_client.HttpConnections(address, connections_max)
        self._requests = requests

    async def call(self, sequence: int) -> Outcome:
        request = self._request.bytes_for(self._requests.message(sequence))
        try:
            async with asyncio.timeout(call_deadline_seconds):
                status, body = await self._connections.exchange(request)
        except TimeoutError:
            return Outcome(grpc.StatusCode.DEADLINE_EXCEEDED.name, 0)
        except ConnectionError:  # refused, reset, or closed before the answer ended
            return Outcome(grpc.StatusCode.UNAVAILABLE.name, 0)
        code = http_client.code_name(status, body)
        return Outcome(code, 1 if code == "OK" else 0)

    async def close(self) -> None:
        self._connections.close()


def make_caller(
    workload: str,
    channel: grpc.aio.Channel,
    requests: Requests,
    target: Target,
    streams_max: int,
    lifetime_seconds: float,
) -> Caller:
    method = WORKLOADS[workload]
    if workload in STREAMING_WORKLOADS:
        return StreamCaller(
            channel, method, requests, _metadata(target), streams_max, lifetime_seconds
        )
    return UnaryCaller(channel, method, requests, _metadata(target))


@contextlib.asynccontextmanager
async def opened_caller(
    workload: str,
    target: Target,
    requests: Requests,
    connections_max: int,
    lifetime_seconds: float,
) -> AsyncIterator[Caller]:
    """The workload's caller on a channel of its own (on its own HTTP connections, for
    an HTTP/JSON workload: at most `connections_max`, as many as streams for gRPC),
    closed on the way out."""
    caller: Caller
    if workload in HTTP_WORKLOADS:
        if not target.http_address:
            raise ValueError(f"workload {workload!r} needs the server's HTTP address")
        caller = HttpCaller(
            target.http_address, WORKLOADS[workload], requests, target.api_key, connections_max
        )
        try:
            yield caller
        finally:
            await caller.close()
        return
    async with grpc.aio.insecure_channel(target.address, options=channel_options) as channel:
        caller = make_caller(workload, channel, requests, target, connections_max, lifetime_seconds)
        try:
            yield caller
        finally:
            await caller.close()


async def probe(workload: str, target: Target, checks_per_message: int = 1) -> Outcome:
    """One call of the workload, to see whether the server answers it at all."""
    requests = Requests(workload, target, f"probe-{new_run_id()}", 0, 1, checks_per_message)
    async with opened_caller(workload, target, requests, 1, call_deadline_seconds) as caller:
        return await _call_safely(caller, 0)


async def _call_safely(caller: Caller, sequence: int) -> Outcome:
    try:
        return await caller.call(sequence)
    except Exception as error:  # a failure of the tool itself: counted, never hidden
        return Outcome(f"CLIENT_{type(error).__name__}", 0)


class Recorder:
    """One worker's histogram and counters; progress is mirrored into shared memory."""

    def __init__(self, progress: Any, worker: int) -> None:
        self.histogram = HdrHistogram(
            histogram_lowest_microseconds,
            histogram_highest_microseconds,
            histogram_significant_digits,
        )
        self.calls = 0
        self.calls_ok = 0
        self.items_ok = 0
        self.errors: Counter[str] = Counter()
        self.last_answer = 0.0
        self._progress = progress
        self._worker = worker

    def record(self, outcome: Outcome, latency_seconds: float) -> None:
        self.last_answer = time.perf_counter()
        self.calls += 1
        self.items_ok += outcome.items_ok
        if outcome.code == "OK":
            self.calls_ok += 1
            microseconds = min(round(latency_seconds * 1e6), histogram_highest_microseconds)
            self.histogram.record_value(max(microseconds, histogram_lowest_microseconds))
        else:
            self.errors[outcome.code] += 1
        for code, count in outcome.item_errors:
            self.errors[code] += count
        self._progress[2 * self._worker] = self.items_ok
        self._progress[2 * self._worker + 1] = self.errors.total()

    def add_unsent(self, count: int) -> None:
        if count:
            self.errors["CLIENT_BACKLOG"] += count
            self._progress[2 * self._worker + 1] = self.errors.total()


async def _timed(
    caller: Caller, recorder: Recorder, sequence: int, due: float, slots: asyncio.Semaphore
) -> None:
    try:
        outcome = await _call_safely(caller, sequence)
    finally:
        slots.release()
    recorder.record(outcome, time.perf_counter() - due)


async def open_loop(
    caller: Caller,
    recorder: Recorder,
    rate_per_second: float,
    duration_seconds: float,
    offset_seconds: float,
    stop: Any = None,
) -> float:
    """Calls due at a fixed rate for the duration, or until `stop` (an Event) is set;
    returns the seconds measured."""
    slots = asyncio.Semaphore(outstanding_calls_max)
    in_flight: set[asyncio.Task[None]] = set()
    start = time.perf_counter() + offset_seconds
    total = math.floor(duration_seconds * rate_per_second)
    stop_sending = start + duration_seconds + backlog_grace_seconds
    for sequence in range(total):
        if stop is not None and stop.is_set():
            break
        due = start + sequence / rate_per_second
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()
        if time.perf_counter() > stop_sending:
            slots.release()
            recorder.add_unsent(total - sequence)
            break
        task = asyncio.create_task(_timed(caller, recorder, sequence, due, slots))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        _, late = await asyncio.wait(in_flight, timeout=call_deadline_seconds + 1.0)
        for task in late:
            task.cancel()
    return max(recorder.last_answer - start, duration_seconds if not recorder.calls else 0.0)


async def closed_loop(
    caller: Caller, recorder: Recorder | None, concurrency: int, duration_seconds: float
) -> float:
    """`concurrency` calls in flight for the duration; returns the seconds measured."""
    start = time.perf_counter()
    end = start + duration_seconds
    first = warm_up_sequence_offset if recorder is None else 0

    async def slot(sequence: int) -> None:
        while time.perf_counter() < end:
            sent = time.perf_counter()
            outcome = await _call_safely(caller, sequence)
            if recorder is not None:
                recorder.record(outcome, time.perf_counter() - sent)
            sequence += concurrency

    await asyncio.gather(*(slot(first + index) for index in range(concurrency)))
    last = recorder.last_answer if recorder is not None and recorder.calls else end
    return last - start


def _share(total: int, parts: int, index: int) -> int:
    """Worker `index`'s share of `total` split as evenly as possible."""
    return total // parts + (1 if index < total % parts else 0)


async def _worker(
    index: int, spec: LoadSpec, target: Target, barrier: Any, progress: Any, stop: Any
) -> dict[str, Any]:
    requests = Requests(
        spec.workload, target, spec.run_id, index, spec.workers, spec.checks_per_message
    )
    concurrency = _share(spec.concurrency, spec.workers, index)
    lifetime_seconds = spec.warm_up_seconds + spec.duration_seconds + 2 * call_deadline_seconds
    recorder = Recorder(progress, index)
    async with opened_caller(
        spec.workload, target, requests, concurrency, lifetime_seconds
    ) as caller:
        if spec.warm_up_seconds > 0:
            await closed_loop(caller, None, concurrency, spec.warm_up_seconds)
        await asyncio.to_thread(barrier.wait, worker_start_seconds_max)
        if spec.mode == "latency":
            # Workers interleave their due times instead of sending in step.
            offset_seconds = index / spec.rate_per_second
            elapsed = await open_loop(
                caller,
                recorder,
                spec.rate_per_second / spec.workers,
                spec.duration_seconds,
                offset_seconds,
                stop,
            )
        else:
            elapsed = await closed_loop(caller, recorder, concurrency, spec.duration_seconds)
    return {
        "worker": index,
        "elapsed_seconds": elapsed,
        "calls": recorder.calls,
        "calls_ok": recorder.calls_ok,
        "items_ok": recorder.items_ok,
        "errors": dict(recorder.errors),
        "histogram": recorder.histogram.encode(),
    }


def _worker_main(
    index: int,
    spec: LoadSpec,
    target: Target,
    barrier: Any,
    progress: Any,
    reports: Any,
    stop: Any,
) -> None:
    """Entry point of a worker process: its own uvloop event loop and channel."""
    import uvloop

    try:
        report = uvloop.run(_worker(index, spec, target, barrier, progress, stop))
    except BaseException as error:
        barrier.abort()  # the parent stops waiting for a worker that will never be ready
        report = {"worker": index, "failure": f"{type(error).__name__}: {error}"}
    reports.put(report)


@dataclass
class LoadResult:
    """A run's merged figures. Calls are request messages; items are checks (or calls)."""

    spec: LoadSpec
    elapsed_seconds: float
    calls: int
    calls_ok: int
    items_ok: int
    errors: Counter[str]
    histogram: HdrHistogram

    @property
    def calls_per_second(self) -> float:
        return self.calls_ok / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def items_per_second(self) -> float:
        return self.items_ok / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def latency_ms(self, percentile: float) -> float | None:
        if not self.histogram.get_total_count():
            return None
        return float(self.histogram.get_value_at_percentile(percentile)) / 1000.0


ProgressCallback = Callable[[float, int, int], None]


def stop_event() -> Any:
    """An Event for `run_load`'s `stop`, to be set from any thread of this process."""
    return multiprocessing.get_context("spawn").Event()


def run_load(
    spec: LoadSpec,
    target: Target,
    on_start: Callable[[], None] | None = None,
    on_progress: ProgressCallback | None = None,
    stop: Any = None,
) -> LoadResult:
    """Run `spec` against `target` from `spec.workers` processes and merge their results.

    `on_start` is called once every worker has connected and warmed up, as measurement
    begins; `on_progress(seconds, items_ok, errors)` about once a second after that. In
    latency mode, `stop` (a `stop_event()`), once set, ends the sending before the
    duration is up: the calls already sent are answered and measured, no others.
    """
    context = multiprocessing.get_context("spawn")  # grpc does not survive fork
    barrier = context.Barrier(spec.workers + 1)
    progress = context.RawArray("q", 2 * spec.workers)
    reports = context.Queue()
    workers = [
        context.Process(
            target=_worker_main,
            args=(index, spec, target, barrier, progress, reports, stop),
            name=f"load-{spec.workload}-{index}",
            daemon=True,
        )
        for index in range(spec.workers)
    ]
    for worker in workers:
        worker.start()
    try:
        try:
            barrier.wait(worker_start_seconds_max + spec.warm_up_seconds)
        except threading.BrokenBarrierError:
            raise RuntimeError(f"workers failed to start: {_failures(reports)}") from None
        if on_start is not None:
            on_start()
        collected = _collect(spec, reports, progress, on_progress)
    finally:
        for worker in workers:
            worker.join(worker_exit_seconds_max)
            if worker.is_alive():
                worker.kill()
                worker.join(worker_exit_seconds_max)
    return _merge(spec, collected)


def _failures(reports: Any) -> list[str]:
    found = []
    try:
        while True:
            report = reports.get(timeout=worker_exit_seconds_max)
            found.append(f"worker {report['worker']}: {report.get('failure', 'ready')}")
    except queue.Empty:
        return found


def _collect(
    spec: LoadSpec, reports: Any, progress: Any, on_progress: ProgressCallback | None
) -> list[dict[str, Any]]:
    started = time.monotonic()
    deadline = started + spec.duration_seconds + call_deadline_seconds
    deadline += backlog_grace_seconds + worker_report_margin_seconds
    collected: list[dict[str, Any]] = []
    next_progress = started + progress_interval_seconds
    while len(collected) < spec.workers:
        now = time.monotonic()
        if now > deadline:
            raise RuntimeError(f"{spec.workers - len(collected)} workers did not report in time")
        try:
            report = reports.get(timeout=max(0.01, min(next_progress, deadline) - now))
        except queue.Empty:
            report = None
        if report is not None:
            if "failure" in report:
                raise RuntimeError(f"worker {report['worker']} failed: {report['failure']}")
            collected.append(report)
        if time.monotonic() >= next_progress:
            next_progress += progress_interval_seconds
            if on_progress is not None:
                items, errors = sum(progress[0::2]), sum(progress[1::2])
                on_progress(time.monotonic() - started, items, errors)
    return collected


def _merge(spec: LoadSpec, reports: list[dict[str, Any]]) -> LoadResult:
    histogram = HdrHistogram(
        histogram_lowest_microseconds,
        histogram_highest_microseconds,
        histogram_significant_digits,
    )
    errors: Counter[str] = Counter()
    for report in reports:
        histogram.decode_and_add(report["histogram"])
        errors.update(report["errors"])
    return LoadResult(
        spec=spec,
        elapsed_seconds=max(report["elapsed_seconds"] for report in reports),
        calls=sum(report["calls"] for report in reports),
        calls_ok=sum(report["calls_ok"] for report in reports),
        items_ok=sum(report["items_ok"] for report in reports),
        errors=errors,
        histogram=histogram,
    )


__all__ = [
    "HTTP_WORKLOADS",
    "STREAMING_WORKLOADS",
    "WORKLOADS",
    "LoadResult",
    "LoadSpec",
    "Outcome",
    "PhoneNumbers",
    "Target",
    "new_run_id",
    "probe",
    "run_load",
    "stop_event",
]
