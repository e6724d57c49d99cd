"""Writes purse-client's generated modules from the contract's descriptor set.

    python clients/python/generate.py DESCRIPTOR_SET OUTPUT_DIRECTORY

DESCRIPTOR_SET is the public contract as `make protos` writes it (a FileDescriptorSet with
imports and source info). For each proto package of Purse's (`purse.v1`, `purse.admin.v1`
…) it writes OUTPUT_DIRECTORY/<the package without `purse.`, dots as underscores>.py with:

- a `ContractEnum` for each enum, its members the values without the enum's prefix;
- a frozen dataclass for each message a response reaches, read from the message by its
  `of` classmethod and keeping it as `raw`: Timestamps are aware datetimes (UTC), enums
  their `ContractEnum`, repeated fields tuples, maps dicts, messages their dataclass.
  Fields with presence (proto3 `optional`, oneof members, Timestamps, messages that reach
  themselves) are None when unset; any other message field reads as protobuf reads it,
  its defaults when unset;
- for each service of the package, a client class: one method per RPC, taking the request
  message or its fields as keyword arguments, answering the response's dataclass (a
  bidirectional stream: a `Stream`; a stream of answers to one request: an async
  iterator of the responses' dataclasses), its docstring the RPC's comment.

A service gets a client by one line in `clients` below. Calls are retried on UNAVAILABLE
only when a retry cannot apply anything twice: reads (`read_prefixes`) and the writes
`clients` names as idempotent. The output is then formatted by ruff (`make protos`).
Pure apart from reading the set and writing the modules.
"""

from __future__ import annotations

import keyword
import re
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.descriptor_pb2 import (
    DescriptorProto,
    FieldDescriptorProto,
    FileDescriptorSet,
    MethodDescriptorProto,
    ServiceDescriptorProto,
)

from purse.api.http.schemas import Contract, full_name


@dataclass(frozen=True)
class Client:
    """How a service's client class is generated."""

    class_name: str
    # Writes a retry cannot apply twice (idempotent by a key the request carries).
    idempotent: frozenset[str] = frozenset()


# One line per service. TerminalClient (terminal.py) adds identification and the check
# stream to TerminalServiceCalls; the others are used as generated.
clients: dict[str, Client] = {
    "purse.v1.TerminalService": Client(
        "TerminalServiceCalls",
        frozenset(
            {
                "IdentifyCustomer",
                "CalculateCheck",
                "ProcessCheck",
                "RefundTransaction",
                "RegisterCustomer",
                "AddCustomerIdentifier",
            }
        ),
    ),
    "purse.admin.v1.AdminService": Client(
        "AdminClient", frozenset({"UpsertGoods", "ApplyCustomerOperation"})
    ),
    "purse.platform.v1.PlatformService": Client("PlatformClient"),
}
# RPCs named so change nothing (the contract's naming, AIP 131-132).
read_prefixes = ("Get", "List", "Find", "Search")
sign_in_method = "SignIn"
timestamp_type = "google.protobuf.Timestamp"
line_length_max = 100

_Type = FieldDescriptorProto.Type
_scalars = {
    _Type.TYPE_DOUBLE: "float",
    _Type.TYPE_FLOAT: "float",
    _Type.TYPE_BOOL: "bool",
    _Type.TYPE_STRING: "str",
    _Type.TYPE_BYTES: "bytes",
    **{
        kind: "int"
        for kind in (
            _Type.TYPE_INT64,
            _Type.TYPE_UINT64,
            _Type.TYPE_INT32,
            _Type.TYPE_FIXED64,
            _Type.TYPE_FIXED32,
            _Type.TYPE_UINT32,
            _Type.TYPE_SFIXED32,
            _Type.TYPE_SFIXED64,
            _Type.TYPE_SINT32,
            _Type.TYPE_SINT64,
        )
    },
}
# Names the generated classes give a meaning of their own.
_reserved = frozenset({"raw", "of", "request", "self", "cls"})


def snake_case(name: str) -> str:
    """IdentifyCustomer -> identify_customer."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def module_name(package: str) -> str:
    """The generated module of a proto package: purse.admin.v1 -> admin_v1."""
    return package.removeprefix("purse.").replace(".", "_")


def docstring(text: str, indent: str) -> list[str]:
    """A docstring's lines, wrapped to the line length."""
    text = text.replace("\\", "\\\\").replace('"""', "'''")
    width = line_length_max - len(indent) - 6
    paragraphs = [
        textwrap.fill(" ".join(paragraph.split()), width)
        for paragraph in text.strip().split("\n\n")
        if paragraph.strip()
    ]
    lines = "\n\n".join(paragraphs or ["(undocumented)"]).splitlines()
    if len(lines) == 1:
        return [f'{indent}"""{lines[0]}"""']
    return [f'{indent}"""{lines[0]}', *(f"{indent}{line}" if line else "" for line in lines[1:]),
            f'{indent}"""']  # fmt: skip


@dataclass
class Located:
    """Where a message or enum is defined: its file's generated module and its path in it."""

    package: str
    proto_module: str  # purse.v1.common_pb2
    path: str  # Outer.Inner, as the generated module nests it


@dataclass
class Index:
    """The contract's files by full name, with what the generated modules import."""

    contract: Contract
    located: dict[str, Located] = field(default_factory=dict)
    services: dict[str, tuple[str, str]] = field(default_factory=dict)  # package, module

    @classmethod
    def of(cls, descriptors: FileDescriptorSet) -> Index:
        files = [file for file in descriptors.file if file.package.startswith("purse.")]
        index = cls(Contract(descriptors.file))
        for file in files:
            proto_module = file.name.removesuffix(".proto").replace("/", ".") + "_pb2"
            for message in file.message_type:
                index._locate(file.package, proto_module, message, "")
            for enum in file.enum_type:
                index.located[f"{file.package}.{enum.name}"] = Located(
                    file.package, proto_module, enum.name
                )
            for service in file.service:
                index.services[f"{file.package}.{service.name}"] = (file.package, proto_module)
        return index

    def _locate(
        self, package: str, proto_module: str, message: DescriptorProto, outer: str
    ) -> None:
        path = f"{outer}.{message.name}" if outer else message.name
        self.located[f"{package}.{path}"] = Located(package, proto_module, path)
        for nested in message.nested_type:
            self._locate(package, proto_module, nested, path)
        for enum in message.enum_type:
            self.located[f"{package}.{path}.{enum.name}"] = Located(
                package, proto_module, f"{path}.{enum.name}"
            )

    def map_entry(self, field_proto: FieldDescriptorProto) -> DescriptorProto | None:
        if field_proto.type != _Type.TYPE_MESSAGE:
            return None
        message = self.contract.messages.get(full_name(field_proto.type_name))
        return message if message is not None and message.options.map_entry else None

    def reached_by_responses(self) -> list[str]:
        """Every message a response of a generated client reaches, responses first."""
        pending = [
            full_name(method.output_type)
            for name in clients
            for method in self.contract.services[name].method
        ]
        reached: list[str] = []
        while pending:
            name = pending.pop(0)
            if name in reached or name == timestamp_type:
                continue
            reached.append(name)
            for field_proto in self.contract.messages[name].field:
                if field_proto.type == _Type.TYPE_MESSAGE:
                    pending.append(full_name(field_proto.type_name))
        return [name for name in reached if name in self.located]

    def reaches_itself(self, name: str) -> bool:
        """Whether a message reaches itself through its message fields."""
        seen: set[str] = set()
        pending = [name]
        while pending:
            for field_proto in self.contract.messages[pending.pop()].field:
                target = full_name(field_proto.type_name)
                if field_proto.type != _Type.TYPE_MESSAGE or target == timestamp_type:
                    continue
                if target == name:
                    return True
                if target not in seen and target in self.contract.messages:
                    seen.add(target)
                    pending.append(target)
        return False


class Module:
    """One generated module: its package's enums, results and service clients."""

    def __init__(self, index: Index, package: str) -> None:
        self.index = index
        self.package = package
        self.imports: set[str] = set()
        self.type_checking_imports: set[str] = set()

    def proto_alias(self, proto_module: str) -> str:
        alias = proto_module.removeprefix("purse.").replace(".", "_")
        package, _, name = proto_module.rpartition(".")
        self.imports.add(f"from {package} import {name} as {alias}")
        return alias

    def proto_class(self, full: str) -> str:
        located = self.index.located[full]
        return f"{self.proto_alias(located.proto_module)}.{located.path}"

    def result_class(self, full: str) -> str:
        """The generated name of a message's result or an enum, qualified if elsewhere."""
        located = self.index.located[full]
        name = located.path.replace(".", "")
        if located.package == self.package:
            return name
        other = module_name(located.package)
        self.imports.add(f"from purse.client import {other}")
        return f"{other}.{name}"

    def write(self, services: list[str]) -> str:
        body = [*self.enums(), *self.results(), *self.service_classes(services)]
        header = docstring(
            f"The {self.package} contract's enums, results and clients, generated by "
            "clients/python/generate.py from protos/ (`make protos`): do not edit.",
            "",
        )
        imports = sorted(self.imports)
        guarded = sorted(self.type_checking_imports)
        lines = [*header, "", "from __future__ import annotations", "", *imports, ""]
        if guarded:
            lines += ["if TYPE_CHECKING:", *(f"    {line}" for line in guarded), ""]
        return "\n".join([*lines, *body]) + "\n"

    def enums(self) -> Iterator[str]:
        contract = self.index.contract
        for name, enum in contract.enums.items():
            located = self.index.located.get(name)
            if located is None or located.package != self.package:
                continue
            self.imports.add("from purse.client.enums import ContractEnum")
            prefix = snake_case(enum.name).upper() + "_"
            yield ""
            yield f"class {self.result_class(name)}(ContractEnum):"
            yield from docstring(contract.comment(name), "    ")
            yield ""
            for value in enum.value:
                member = value.name.removeprefix(prefix)
                if not member.isidentifier() or keyword.iskeyword(member):
                    member = value.name
                yield f"    {member} = {value.number}"
                yield from docstring(contract.comment(f"{name}.{value.name}"), "    ")
            yield ""

    def results(self) -> Iterator[str]:
        for name in self.index.reached_by_responses():
            if self.index.located[name].package == self.package:
                yield from self.result(name)

    def result(self, name: str) -> Iterator[str]:
        message = self.index.contract.messages[name]
        if message.options.map_entry:
            return
        self.imports.add("from dataclasses import dataclass, field")
        result_name = self.result_class(name)
        raw = self.proto_class(name)
        yield ""
        yield "@dataclass(frozen=True, slots=True)"
        yield f"class {result_name}:"
        yield from docstring(
            f"{self.index.contract.comment(name)}\n\n`raw` is the {name} message read.", "    "
        )
        yield ""
        yield f"    raw: {raw} = field(repr=False, compare=False)"
        readers: list[str] = []
        for field_proto in message.field:
            if field_proto.name in _reserved or keyword.iskeyword(field_proto.name):
                raise SystemExit(f"{name}.{field_proto.name}: a name the results cannot take")
            annotation, reader = self.converted(name, message, field_proto)
            yield f"    {field_proto.name}: {annotation}"
            yield from docstring(self.index.contract.comment(f"{name}.{field_proto.name}"), "    ")
            readers.append(reader)
        yield ""
        yield "    @classmethod"
        yield f"    def of(cls, raw: {raw}) -> {result_name}:"
        yield f'        """The {result_name} `raw` reads as."""'
        yield (
            f"        return cls(raw, {', '.join(readers)})"
            if readers
            else "        return cls(raw)"
        )
        yield ""

    def converted(
        self, owner: str, message: DescriptorProto, field_proto: FieldDescriptorProto
    ) -> tuple[str, str]:
        """The field's annotation in the result, and the expression reading it from `raw`."""
        value = f"raw.{field_proto.name}"
        entry = self.index.map_entry(field_proto)
        if entry is not None:
            self.imports.add("from collections.abc import Mapping")
            key_type, _ = self.value_type(entry.field[0])
            value_type, read = self.value_type(entry.field[1])
            reader = (
                f"dict({value})"
                if read == "{}"
                else f"{{key: {read.format('item')} for key, item in {value}.items()}}"
            )
            return f"Mapping[{key_type}, {value_type}]", reader
        value_type, read = self.value_type(field_proto)
        if field_proto.label == FieldDescriptorProto.LABEL_REPEATED:
            return f"tuple[{value_type}, ...]", f"tuple({read.format('item')} for item in {value})"
        target = full_name(field_proto.type_name)
        present = (
            field_proto.proto3_optional
            or field_proto.HasField("oneof_index")
            or target == timestamp_type
            or (field_proto.type == _Type.TYPE_MESSAGE and self.index.reaches_itself(owner))
        )
        if not present:
            return value_type, read.format(value)
        check = f'raw.HasField("{field_proto.name}")'
        return f"{value_type} | None", f"{read.format(value)} if {check} else None"

    def value_type(self, field_proto: FieldDescriptorProto) -> tuple[str, str]:
        """A single value's type, and a format string reading it from `{}`."""
        if field_proto.type in _scalars:
            return _scalars[field_proto.type], "{}"
        target = full_name(field_proto.type_name)
        if field_proto.type == _Type.TYPE_ENUM:
            enum = self.result_class(target)
            return enum, f"{enum}({{}})"
        if target == timestamp_type:
            self.imports.add("from datetime import UTC, datetime")
            return "datetime", "{}.ToDatetime(UTC)"
        if target not in self.index.located:
            raise SystemExit(f"{target}: no conversion for this type; add one to generate.py")
        result = self.result_class(target)
        return result, f"{result}.of({{}})"

    def service_classes(self, services: list[str]) -> Iterator[str]:
        for name in services:
            yield from ServiceWriter(self, name).lines()


class ServiceWriter:
    """A service's client class in its package's module."""

    def __init__(self, module: Module, name: str) -> None:
        self.module = module
        self.name = name
        self.client = clients[name]
        self.service: ServiceDescriptorProto = module.index.contract.services[name]
        _, proto_module = module.index.services[name]
        self.grpc_alias = module.proto_alias(proto_module + "_grpc")
        self.stub_type = f"{self.service.name}AsyncStub"
        package, _, grpc_module = (proto_module + "_grpc").rpartition(".")
        module.type_checking_imports.add(f"from {package}.{grpc_module} import {self.stub_type}")

    def lines(self) -> Iterator[str]:
        module = self.module
        module.imports.update(
            {
                "from typing import TYPE_CHECKING, ClassVar",
                "from functools import cached_property",
                "from purse.client.calls import ServiceClient",
            }
        )
        methods = {method.name: method for method in self.service.method}
        signs_in = sign_in_method in methods
        yield ""
        yield f"class {self.client.class_name}(ServiceClient):"
        yield from docstring(
            f"{module.index.contract.comment(self.name)}\n\nEvery RPC of {self.name}.", "    "
        )
        yield ""
        yield f"    signs_in: ClassVar[bool] = {signs_in}"
        yield ""
        yield "    @cached_property"
        yield f"    def _stub(self) -> {self.stub_type}:"
        yield f"        return {self.grpc_alias}.{self.service.name}Stub(self._channel)"
        if signs_in:
            yield ""
            yield "    async def _new_token(self) -> str:"
            yield "        answer = await self.sign_in(login=self._login, password=self._password)"
            yield "        return answer.token"
        for method in self.service.method:
            yield ""
            if method.client_streaming and method.server_streaming:
                yield from self.stream(method)
            elif method.client_streaming:
                raise SystemExit(f"{self.name}.{method.name}: no client-only streams")
            else:
                yield from self.unary(method)

    def documented(self, method: MethodDescriptorProto, retried: bool) -> list[str]:
        comment = self.module.index.contract.comment(f"{self.name}.{method.name}")
        if retried:
            comment += "\n\nRetried on UNAVAILABLE: a retry cannot apply it twice."
        return docstring(comment, "        ")

    def unary(self, method: MethodDescriptorProto) -> Iterator[str]:
        """A unary call, or a stream of answers to one request (an async iterator of
        results, never retried: see purse.client.calls)."""
        module = self.module
        result = module.result_class(full_name(method.output_type))
        streamed = method.server_streaming
        retried = not streamed and (
            method.name.startswith(read_prefixes) or method.name in self.client.idempotent
        )
        parameters, request = self.request_parameters(method)
        name = snake_case(method.name)
        if streamed:
            module.imports.add("from collections.abc import AsyncIterator")
            yield f"    def {name}(self, {parameters}) -> AsyncIterator[{result}]:"
            yield from self.documented(method, retried)
            yield "        return self._server_stream("
        else:
            yield f"    async def {name}(self, {parameters}) -> {result}:"
            yield from self.documented(method, retried)
            yield "        return await self._unary("
        yield f"            self._stub.{method.name},"
        yield f"            {request},"
        yield f"            {result}.of,"
        if not streamed:
            yield f"            retry={retried},"
        if method.name == sign_in_method:
            yield "            authenticated=False,"
        yield "        )"

    def request_parameters(self, method: MethodDescriptorProto) -> tuple[str, str]:
        """A method's parameters (the request message, or its fields by keyword), and the
        expression building the request from them."""
        module = self.module
        request_name = full_name(method.input_type)
        request_class = module.proto_class(request_name)
        request = module.index.contract.messages[request_name]
        parameters = [f"request: {request_class} | None = None", "/"]
        arguments: list[str] = []
        for field_proto in request.field:
            if field_proto.name in _reserved or keyword.iskeyword(field_proto.name):
                raise SystemExit(f"{request_name}.{field_proto.name}: not a keyword argument")
            parameters.append(f"{field_proto.name}: {self.argument_type(field_proto)} = None")
            arguments.append(f"{field_proto.name}={field_proto.name}")
        if arguments:
            parameters.insert(2, "*")
        module.imports.add("from purse.client.calls import request_of")
        built = f"request_of({', '.join([request_class, 'request', *arguments])})"
        return ", ".join(parameters), built

    def argument_type(self, field_proto: FieldDescriptorProto) -> str:
        """A request field's keyword: its value as the request message takes it, or None."""
        module = self.module
        entry = module.index.map_entry(field_proto)
        if entry is not None:
            module.imports.add("from collections.abc import Mapping")
            key_type = self.argument_type(entry.field[0]).removesuffix(" | None")
            value_type = self.argument_type(entry.field[1]).removesuffix(" | None")
            return f"Mapping[{key_type}, {value_type}] | None"
        target = full_name(field_proto.type_name)
        if field_proto.type in _scalars:
            single = _scalars[field_proto.type]
        elif field_proto.type == _Type.TYPE_ENUM:
            single = "int"  # a ContractEnum member, or the generated module's constant
        elif target == timestamp_type:
            module.imports.add("from datetime import datetime")
            module.imports.add("from google.protobuf.timestamp_pb2 import Timestamp")
            single = "datetime | Timestamp"
        else:
            single = module.proto_class(target)
        if field_proto.label == FieldDescriptorProto.LABEL_REPEATED:
            module.imports.add("from collections.abc import Iterable")
            return f"Iterable[{single}] | None"
        return f"{single} | None"

    def stream(self, method: MethodDescriptorProto) -> Iterator[str]:
        module = self.module
        module.imports.add("from purse.client.calls import Stream")
        request_class = module.proto_class(full_name(method.input_type))
        response_class = module.proto_class(full_name(method.output_type))
        result = module.result_class(full_name(method.output_type))
        stream_type = f"Stream[{request_class}, {response_class}, {result}]"
        yield f"    def {snake_case(method.name)}(self) -> {stream_type}:"
        yield from self.documented(method, False)
        yield f"        return self._stream(self._stub.{method.name}, {result}.of)"


def generate(descriptors: FileDescriptorSet, output: Path) -> list[Path]:
    """Writes a module per package of the contract; returns the paths written."""
    index = Index.of(descriptors)
    unknown = set(index.services) - set(clients)
    if unknown:
        raise SystemExit(f"no client declared for {sorted(unknown)}: add a line to `clients`")
    packages = sorted({located.package for located in index.located.values()})
    written = []
    for package in packages:
        services = [name for name, (owner, _) in index.services.items() if owner == package]
        path = output / f"{module_name(package)}.py"
        path.write_text(Module(index, package).write(services))
        written.append(path)
    return written


def main(arguments: list[str]) -> int:
    if len(arguments) != 2:
        raise SystemExit(__doc__)
    source, output = Path(arguments[0]), Path(arguments[1])
    output.mkdir(parents=True, exist_ok=True)
    for path in generate(FileDescriptorSet.FromString(source.read_bytes()), output):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
