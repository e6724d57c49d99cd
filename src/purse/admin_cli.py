"""`purse admin`: every control panel call from the command line, over the public API.

Each AdminService RPC is a command named in kebab case (`create-point-of-sale` calls
CreatePointOfSale), so the CLI never lags behind the contract and runs no SQL of its
own. The request is protobuf's JSON (an argument, or `-` for stdin), with `--set
path=value` for single fields (`--set point_of_sale.name=Kyiv`; a value that reads as
JSON — a number, true, a list — is taken as such). Answers print as lines a person
reads (money in the currency's decimals, points and product units in theirs); `--json`
prints the API's answer as it is, for scripts. A call answered with a file in pieces
(`export-customers`) writes the file to stdout as it comes (`> customers.csv`).

`purse admin watch-operation ID` follows a bulk operation (GetOperation) with a progress
bar until it succeeds or is cancelled; Ctrl-C stops watching, not the operation.

Credentials: --api-key, else PURSE_ADMIN_API_KEY, else the token `purse admin sign-in`
saved in the data directory (readable by its owner only). The server: --target,
PURSE_ADMIN_TARGET, the address the server running on this data directory recorded,
then the configured gRPC host and port.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from purse.admin.v1 import admin_service_pb2, bulk_actions_pb2
from purse.api.http.downloads import DOWNLOADS
from purse.cli_output import render
from purse.client import PurseError
from purse.config import load_settings
from purse.domain.amounts import currency_exponents
from purse.store.data_directory import read_server_target

token_file = "admin-token"
_service = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"]
call_seconds_max = 60.0
watch_poll_seconds = 0.5
_finished_states = frozenset(
    {bulk_actions_pb2.OPERATION_STATE_SUCCEEDED, bulk_actions_pb2.OPERATION_STATE_CANCELLED}
)


def command_name(method_name: str) -> str:
    """CreatePointOfSale -> create-point-of-sale."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", method_name).lower()


_methods: dict[str, MethodDescriptor] = {
    command_name(method.name): method for method in _service.methods if method.name != "SignIn"
}


def request_fields(text: str, assignments: list[str]) -> dict[str, Any]:
    """The request as a dict: the JSON given, then each PATH=VALUE set into it."""
    if text == "-":
        text = sys.stdin.read()
    fields: dict[str, Any] = json.loads(text) if text.strip() else {}
    if not isinstance(fields, dict):
        raise SystemExit("the request must be a JSON object")
    for assignment in assignments:
        path, separator, raw = assignment.partition("=")
        if not separator or not path:
            raise SystemExit(f"--set needs PATH=VALUE, got {assignment!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        target = fields
        *parents, last = path.split(".")
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise SystemExit(f"--set {path}: {part} is not a message in the request")
        target[last] = value
    return fields


def _data_dir(arguments: argparse.Namespace) -> Path:
    return Path(arguments.data_dir) if arguments.data_dir else load_settings().data_dir


def _target(arguments: argparse.Namespace) -> str:
    settings = load_settings()
    return (
        arguments.target
        or os.environ.get("PURSE_ADMIN_TARGET", "")
        or read_server_target(_data_dir(arguments))
        or f"{settings.grpc_host}:{settings.grpc_port}"
    )


def _credential(arguments: argparse.Namespace) -> str:
    saved = _data_dir(arguments) / token_file
    credential = arguments.api_key or os.environ.get("PURSE_ADMIN_API_KEY", "")
    if not credential and saved.exists():
        credential = saved.read_text().strip()
    if not credential:
        raise SystemExit(
            "no administrator credentials: run `purse admin sign-in --login …`, pass"
            " --api-key, or set PURSE_ADMIN_API_KEY"
        )
    return credential


async def _call(target: str, method: MethodDescriptor, request: Message, credential: str) -> Any:
    response_class = GetMessageClass(method.output_type)
    async with grpc.aio.insecure_channel(target) as channel:
        call: Any = channel.unary_unary(
            f"/{_service.full_name}/{method.name}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        metadata = (("authorization", f"Bearer {credential}"),) if credential else ()
        return await call(request, metadata=metadata, timeout=call_seconds_max)


async def _download(
    target: str, method: MethodDescriptor, request: Message, credential: str
) -> None:
    """Writes the file a method answers in pieces (an export) to stdout as it comes."""
    response_class = GetMessageClass(method.output_type)
    download = DOWNLOADS[f"/{_service.full_name}/{method.name}"]
    output = sys.stdout.buffer
    async with grpc.aio.insecure_channel(target) as channel:
        call: Any = channel.unary_stream(
            f"/{_service.full_name}/{method.name}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        async for response in call(request, metadata=(("authorization", f"Bearer {credential}"),)):
            output.write(getattr(response, download.field))
    output.flush()


def _print(answer: Message, as_json: bool, currency: str) -> None:
    if as_json:
        print(json.dumps(json_format.MessageToDict(answer), indent=2, ensure_ascii=False))
        return
    fields = json_format.MessageToDict(answer, preserving_proto_field_name=True)
    lines = render(fields, currency, currency_exponents.get(currency, 2))
    print("\n".join(lines) if lines else "done")


async def _currency(target: str, credential: str) -> str:
    method = _service.methods_by_name["GetBusiness"]
    answer = await _call(target, method, admin_service_pb2.GetBusinessRequest(), credential)
    return str(answer.business.currency)


def _sign_in(arguments: argparse.Namespace) -> int:
    login = arguments.login or os.environ.get("PURSE_ADMIN_LOGIN", "")
    if not login:
        raise SystemExit("sign-in needs --login (or PURSE_ADMIN_LOGIN)")
    password = os.environ.get("PURSE_ADMIN_PASSWORD") or getpass.getpass("Password: ")
    request = admin_service_pb2.SignInRequest(login=login, password=password)
    method = _service.methods_by_name["SignIn"]
    answer = asyncio.run(_call(_target(arguments), method, request, ""))
    saved = _data_dir(arguments) / token_file
    saved.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(answer.token)
    if arguments.json:
        _print(answer, True, "")
    else:
        role = admin_service_pb2.AdministratorRole.Name(answer.administrator.role)
        print(
            f"signed in to business {answer.business_id} as {login} ({role.split('_')[-1].lower()})"
        )
    return 0


def _list_commands() -> int:
    for name, method in sorted(_methods.items()):
        print(f"{name:34} {method.input_type.name}")
    return 0


def run(arguments: argparse.Namespace) -> int:
    if arguments.command == "sign-in":
        return _guarded(lambda: _sign_in(arguments))
    if arguments.command == "sign-out":
        (_data_dir(arguments) / token_file).unlink(missing_ok=True)
        return 0
    if arguments.command == "commands":
        return _list_commands()
    if arguments.command == "watch-operation":
        return _guarded(lambda: asyncio.run(_watch(arguments)))
    method = _methods.get(arguments.command)
    if method is None:
        raise SystemExit(f"no command {arguments.command!r}; `purse admin commands` lists them")
    request = GetMessageClass(method.input_type)()
    try:
        json_format.ParseDict(request_fields(arguments.request, arguments.set), request)
    except (json_format.ParseError, ValueError) as error:
        raise SystemExit(f"the request is not a {method.input_type.name}: {error}") from error

    async def act() -> int:
        target, credential = _target(arguments), _credential(arguments)
        if method.server_streaming:
            await _download(target, method, request, credential)
            return 0
        answer = await _call(target, method, request, credential)
        currency = "" if arguments.json else await _currency(target, credential)
        _print(answer, arguments.json, currency)
        return 0

    return _guarded(lambda: asyncio.run(act()))


async def _watch(arguments: argparse.Namespace) -> int:
    """Poll the operation every `watch_poll_seconds` with a progress bar of the members
    reached (done, failed or rejected) until it is finished; 0 when it succeeded."""
    if not arguments.request.isdigit():
        raise SystemExit("watch-operation takes the operation's id")
    target, credential = _target(arguments), _credential(arguments)
    method = _service.methods_by_name["GetOperation"]
    request = admin_service_pb2.GetOperationRequest(operation_id=int(arguments.request))
    columns = (
        TextColumn("operation {task.fields[operation_id]}: {task.fields[state]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}, rejected {task.fields[rejected]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("", total=None, operation_id=request.operation_id,
                                 state="", failed=0, rejected=0)  # fmt: skip
        while True:
            operation = (await _call(target, method, request, credential)).operation
            state = bulk_actions_pb2.OperationState.Name(operation.state)
            progress.update(
                task,
                total=operation.total,
                completed=operation.done + operation.failed + operation.rejected,
                state=state.removeprefix("OPERATION_STATE_").lower(),
                failed=operation.failed,
                rejected=operation.rejected,
            )
            if operation.state in _finished_states:
                break
            await asyncio.sleep(watch_poll_seconds)
    _print(admin_service_pb2.GetOperationResponse(operation=operation), arguments.json, "")
    return 0 if operation.state == bulk_actions_pb2.OPERATION_STATE_SUCCEEDED else 1


def _guarded(action: Any) -> int:
    try:
        return int(action())
    except grpc.aio.AioRpcError as failure:
        error = PurseError(failure)
        print(f"error: {error.code.name} {error.reason}: {error.message}", file=sys.stderr)
        for field, description in error.field_violations.items():
            print(f"  {field}: {description}", file=sys.stderr)
        return 1
