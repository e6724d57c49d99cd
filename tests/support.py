"""Helpers for tests: businesses, terminals and phone numbers of their own."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from purse.admin.v1 import catalogue_pb2 as catalogue
from purse.admin.v1 import setup_pb2 as setup
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.domain import credentials
from purse.domain.customers import PocketKind
from purse.domain.terminals import TerminalKind
from purse.domain.transactions import SaleReceipt
from purse.platform.v1 import platform_service_pb2 as platform
from purse.platform.v1.platform_service_pb2_grpc import PlatformServiceStub
from purse.store.embedded import free_port
from purse.store.postgres.administrators import OperatorKeyStore
from purse.store.postgres.audit import audit
from purse.store.postgres.provisioning import Provisioning
from purse.store.postgres.receipts import DOCUMENT_FIELDS, LINE_FIELDS, TOTAL_FIELDS
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as terminal_pb

if TYPE_CHECKING:
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceAsyncStub

server_start_seconds_max = 30.0
server_stop_seconds_max = 20.0
command_seconds_max = 60

# The session server's settings (tests/e2e/conftest.py), here so tests can import them:
# two conftest modules share the top-level name `conftest`, so neither is imported by name.
# Short enough that the expiry test waits little, long enough for any other use.
steward_code_lifetime_seconds = 3
# Tokens expire fast here so that the client's re-sign-in is exercised for real.
terminal_token_lifetime_seconds = 2
# Streams idle longer than this are closed; metrics connections silent this long dropped.
stream_idle_seconds_max = 3
http_head_seconds_max = 1


@dataclass(frozen=True)
class TerminalAccess:
    """A terminal created for a test, with its plain credentials."""

    terminal_id: int
    login: str
    password: str
    api_key: str


@dataclass(frozen=True)
class Tenant:
    """A business of its own for one test. Its steward terminal is the `steward` fixture's,
    made only for the tests that use one."""

    business_id: int
    program_id: int
    point_of_sale_id: int
    cash_desk: TerminalAccess
    products_account_type_id: int
    money_account_type_id: int
    administrator_api_key: str


_business_numbers = itertools.count(1)
# A known password hashed once: scrypt is deliberately slow, tests make many terminals.
test_password = "correct horse battery staple"
_test_password_hash = credentials.hash_password(test_password)
# What every test business is made of, whichever way it is made.
_program_name = "Test program"
_shop_name = "Shop"
_time_zone = "UTC"
_products = "Fuel"
_products_title = {"en": "Fuel A-95", "uk": "Пальне А-95"}
_products_codes = ("A95",)
_products_limit_without_pin = 20_000
_money = "Wallet"
_money_title = {"en": "Wallet"}


async def make_terminal(
    provisioning: Provisioning,
    business_id: int,
    point_of_sale_id: int,
    kind: TerminalKind,
) -> TerminalAccess:
    """A terminal written straight to the database, for tests without a server."""
    login = f"t-{secrets.token_hex(6)}"
    terminal_id = await provisioning.terminal(
        business_id, point_of_sale_id, f"{kind.value} terminal", kind, login, _test_password_hash
    )
    api_key = credentials.new_api_key()
    await provisioning.api_key(business_id, terminal_id, credentials.api_key_digest(api_key), "t")
    return TerminalAccess(terminal_id, login, test_password, api_key)


async def make_business(
    pool: asyncpg.Pool, enrols_unknown_phones: bool = True, phone_prefix: str = "+380"
) -> Tenant:
    """A business written straight to the database with Provisioning: for the integration
    tests, which run no server to ask. Tests with a server use make_business_through_api;
    both make the same business."""
    provisioning = Provisioning(pool)
    number = next(_business_numbers)
    business_id = await provisioning.business(
        f"Test business {number}", "UAH", 2, phone_prefix=phone_prefix, time_zone=_time_zone
    )
    program_id = await provisioning.program(
        business_id, _program_name, enrols_unknown_phones=enrols_unknown_phones
    )
    shop = await provisioning.point_of_sale(business_id, program_id, _shop_name, _time_zone)
    products = await provisioning.account_type(
        business_id,
        PocketKind.PRODUCTS,
        _products,
        _products_title,
        product_codes=_products_codes,
        redemption_limit_without_pin=_products_limit_without_pin,
    )
    money = await provisioning.account_type(business_id, PocketKind.MONEY, _money, _money_title)
    administrator_api_key = credentials.new_api_key()
    await provisioning.admin_api_key(
        business_id, credentials.api_key_digest(administrator_api_key), "tests"
    )
    return Tenant(
        business_id=business_id,
        program_id=program_id,
        point_of_sale_id=shop,
        cash_desk=await make_terminal(provisioning, business_id, shop, TerminalKind.CASH_DESK),
        products_account_type_id=products,
        money_account_type_id=money,
        administrator_api_key=administrator_api_key,
    )


async def make_terminal_through_api(
    channel: grpc.aio.Channel,
    owner_api_key: str,
    point_of_sale_id: int,
    kind: terminal_pb.TerminalKind.ValueType,
) -> TerminalAccess:
    """An enabled terminal with an API key, made by the owner through AdminService."""
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    login, owner = f"t-{secrets.token_hex(6)}", bearer(owner_api_key)
    kind_name = terminal_pb.TerminalKind.Name(kind).removeprefix("TERMINAL_KIND_").lower()
    created = await stub.CreateTerminal(
        setup.CreateTerminalRequest(
            terminal=setup.Terminal(
                point_of_sale_id=point_of_sale_id,
                name=f"{kind_name} terminal",  # as make_terminal names it
                kind=kind,
                login=login,
                enabled=True,
            ),
            password=test_password,
        ),
        metadata=owner,
    )
    terminal_id = created.terminal.terminal_id
    key = await stub.CreateTerminalApiKey(
        setup.CreateTerminalApiKeyRequest(terminal_id=terminal_id, name="t"), metadata=owner
    )
    return TerminalAccess(terminal_id, login, test_password, key.secret)


async def new_terminal(
    channel: grpc.aio.Channel,
    business: Tenant,
    kind: terminal_pb.TerminalKind.ValueType = terminal_pb.TERMINAL_KIND_KIOSK,
) -> TerminalAccess:
    """Another terminal at the business's point of sale, made by its owner through the API."""
    return await make_terminal_through_api(
        channel, business.administrator_api_key, business.point_of_sale_id, kind
    )


async def disable_terminal(channel: grpc.aio.Channel, business: Tenant, terminal_id: int) -> None:
    """The owner disables a terminal of the business through the API (UpdateTerminal)."""
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    owner = bearer(business.administrator_api_key)
    read = await stub.GetTerminal(setup.GetTerminalRequest(terminal_id=terminal_id), metadata=owner)
    disabled = setup.Terminal()
    disabled.CopyFrom(read.terminal)
    disabled.enabled = False
    await stub.UpdateTerminal(
        setup.UpdateTerminalRequest(terminal=disabled, expected_version=read.terminal.version),
        metadata=owner,
    )


async def make_business_through_api(
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    enrols_unknown_phones: bool = True,
    phone_prefix: str = "+380",
) -> Tenant:
    """make_business's business, every step through the public API of the server at
    `channel`: the operator founds it, its owner sets it up. `pool` only keeps the
    operator's key, as `purse operator-key create` would on the server's machine."""
    founded = await found_business(
        channel,
        pool,
        name=f"Test business {next(_business_numbers)}",
        languages=("en",),
        time_zone=_time_zone,
        phone_prefix=phone_prefix,
    )
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    owner = bearer(founded.owner_api_key)
    program = await stub.CreateProgram(
        setup.CreateProgramRequest(
            program=setup.Program(
                name=_program_name,
                enrols_unknown_phones=enrols_unknown_phones,
                default_access_type=common_pb2.ACCESS_TYPE_FULL,
                notice_channel=setup.NOTICE_CHANNEL_SMS,
            )
        ),
        metadata=owner,
    )
    program_id = program.program.program_id
    shop = await stub.CreatePointOfSale(
        setup.CreatePointOfSaleRequest(
            point_of_sale=setup.PointOfSale(
                program_id=program_id, name=_shop_name, time_zone=_time_zone
            )
        ),
        metadata=owner,
    )
    shop_id = shop.point_of_sale.point_of_sale_id
    products = await stub.CreateAccountType(
        catalogue.CreateAccountTypeRequest(
            account_type=catalogue.AccountType(
                kind=catalogue.ACCOUNT_KIND_PRODUCTS,
                name=_products,
                title=_products_title,
                product_codes=_products_codes,
                redemption_limit_without_pin=_products_limit_without_pin,
            )
        ),
        metadata=owner,
    )
    money = await stub.CreateAccountType(
        catalogue.CreateAccountTypeRequest(
            account_type=catalogue.AccountType(
                kind=catalogue.ACCOUNT_KIND_MONEY, name=_money, title=_money_title
            )
        ),
        metadata=owner,
    )
    key = founded.owner_api_key
    return Tenant(
        business_id=founded.business_id,
        program_id=program_id,
        point_of_sale_id=shop_id,
        cash_desk=await make_terminal_through_api(
            channel, key, shop_id, terminal_pb.TERMINAL_KIND_CASH_DESK
        ),
        products_account_type_id=products.account_type.account_type_id,
        money_account_type_id=money.account_type.account_type_id,
        administrator_api_key=key,
    )


_phone_numbers = itertools.count(1)


def new_phone() -> str:
    """A phone number no other test uses (+38099 followed by 7 digits)."""
    return f"+38099{os.getpid() % 100:02d}{next(_phone_numbers):05d}"


class ServerProcess:
    """`purse serve` in a child process, on free loopback ports, stopped by SIGTERM."""

    def __init__(self, environment: dict[str, str], data_dir: Path) -> None:
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.target = f"127.0.0.1:{self.grpc_port}"
        self.log_path = data_dir / f"server-{self.grpc_port}.log"
        self._environment = {
            **os.environ,
            "PURSE_DATA_DIR": str(data_dir),
            "PURSE_GRPC_PORT": str(self.grpc_port),
            "PURSE_HTTP_PORT": str(self.http_port),
            "PURSE_LOG_FORMAT": "text",
            **environment,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait_seconds: float = server_start_seconds_max) -> ServerProcess:
        data_dir = Path(self._environment["PURSE_DATA_DIR"])
        data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "purse.cli", "serve"],
                env=self._environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_serving(wait_seconds)
        return self

    def _wait_until_serving(self, wait_seconds: float) -> None:
        assert self.process is not None
        wait_until_serving(self.target, self.process, wait_seconds, self.log)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, wait_seconds: float = server_stop_seconds_max) -> int:
        """SIGTERM, then wait; SIGKILL if it will not go. Returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(wait_seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(wait_seconds)
            raise
        finally:
            self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(server_stop_seconds_max)
            self.process = None


def wait_until_serving(
    target: str,
    process: subprocess.Popen[bytes],
    wait_seconds: float,
    log: Callable[[], str],
) -> None:
    """Return once a health check at `target` is answered SERVING; RuntimeError with
    `log()` when `process` exits first or the wait runs out."""
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited early:\n{log()}")
        with grpc.insecure_channel(target) as channel:
            try:
                answer = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=0.5
                )
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"{target} was not serving in {wait_seconds}s:\n{log()}")


def run_purse(
    environment: dict[str, str], *arguments: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`purse ARGUMENTS` in a child process, its output captured, bounded in time."""
    return subprocess.run(
        [sys.executable, "-m", "purse.cli", *arguments],
        env=environment,
        check=False,
        capture_output=True,
        text=True,
        timeout=command_seconds_max,
        cwd=cwd,
    )


def wait_for_health(target: str, status: int, wait_seconds: float) -> None:
    """Return once the server at `target` reports `status`; AssertionError after the wait."""
    deadline = time.monotonic() + wait_seconds
    seen: object = None
    while time.monotonic() < deadline:
        with grpc.insecure_channel(target) as channel:
            try:
                seen = (
                    health_pb2_grpc.HealthStub(channel)
                    .Check(health_pb2.HealthCheckRequest(), timeout=1)
                    .status
                )
            except grpc.RpcError as error:
                seen = error.code()
        if seen == status:
            return
        time.sleep(0.2)
    raise AssertionError(f"health stayed {seen}, not {status}, for {wait_seconds}s")


def stop_embedded_servers(data_dir: Path) -> None:
    """Whatever a test did, leave no embedded PostgreSQL or Redis running under data_dir."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from pathlib import Path; from purse.store.embedded import *;"
            f"EmbeddedPostgres(Path({str(data_dir)!r})).stop();"
            f"EmbeddedRedis(Path({str(data_dir)!r})).stop()",
        ],
        check=False,
        timeout=command_seconds_max,
    )


def side_server(
    database_url: str,
    redis_url: str,
    data_dir: Path,
    environment: dict[str, str] | None = None,
    **settings: str,
) -> ServerProcess:
    """A second server on the session's PostgreSQL and Redis (not started), without the
    notification dispatcher, with `settings` as PURSE_* variables (`WORKERS="2"`) and any
    other variables of `environment`."""
    return ServerProcess(
        {
            "PURSE_DATABASE_URL": database_url,
            "PURSE_REDIS_URL": redis_url,
            "PURSE_NOTIFY_ENABLED": "false",
            **{f"PURSE_{name}": value for name, value in settings.items()},
            **(environment or {}),
        },
        data_dir,
    )


def bearer(credential: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {credential}"),)


def error_reason(error: grpc.RpcError) -> str:
    """The ErrorInfo reason in a failed call's status details."""
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries no google.rpc.Status"
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    raise AssertionError("no ErrorInfo in the status details")


def retry_delay_seconds(error: grpc.aio.AioRpcError) -> int:
    """The RetryInfo delay in a failed call's status details."""
    status = rpc_status.from_call(error)
    retry = error_details_pb2.RetryInfo()
    assert status is not None and any(detail.Unpack(retry) for detail in status.details)
    return int(retry.retry_delay.seconds)


def field_violations(error: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            return {item.field: item.description for item in bad_request.field_violations}
    return {}


async def assert_audit_is_clean(database_url: str, business_id: int) -> None:
    """`purse audit`'s check on one business: every pocket equals the sum of its ledger,
    and no row names what does not exist."""
    connection = await asyncpg.connect(database_url)
    try:
        report = await audit(connection, business_id)
    finally:
        await connection.close()
    assert [discrepancy.describe() for discrepancy in report.discrepancies] == []
    assert [orphans.describe() for orphans in report.orphans] == []


async def audit_unless_set_by_hand(
    request: pytest.FixtureRequest, database_url: str, business_id: int
) -> None:
    """After a test: `purse audit`'s check on its business, unless the test is marked
    `ledger_set_by_hand` (it wrote pockets by hand, so they need not match the ledger)."""
    if request.node.get_closest_marker("ledger_set_by_hand") is None:
        await assert_audit_is_clean(database_url, business_id)


def sealed_by_purse_0_1(old_key: bytes, secret: str) -> bytes:
    """What `credentials.seal` wrote before this format: nonce, HMAC-CTR text, HMAC tag."""
    nonce = bytes(range(1, 17))  # any nonce but one starting with the version byte
    stream = hmac.new(old_key, nonce + (0).to_bytes(4, "big"), hashlib.sha256).digest()
    cipher = bytes(a ^ b for a, b in zip(secret.encode(), stream, strict=False))
    return nonce + cipher + hmac.new(old_key, nonce + cipher, hashlib.sha256).digest()[:16]


@dataclass(frozen=True)
class Founded:
    """A business made through PlatformService, with its first owner's credentials."""

    business_id: int
    owner_administrator_id: int
    owner_login: str
    owner_password: str
    owner_api_key: str


async def operator_key(pool: asyncpg.Pool) -> str:
    """A fresh operator key, kept as `purse operator-key create` keeps one."""
    key = credentials.new_api_key()
    await OperatorKeyStore(pool).add("tests", credentials.api_key_digest(key))
    return key


async def found_business(
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    name: str = "",
    currency: str = "UAH",
    languages: Sequence[str] = ("uk", "en"),
    time_zone: str = "Europe/Kyiv",
    phone_prefix: str = "+380",
) -> Founded:
    """A business of its own through the operator's API (defaults: UAH, Kyiv, +380)."""
    login = f"owner-{secrets.token_hex(6)}"
    request = platform.CreateBusinessRequest(
        name=name or f"Business {next(_business_numbers)}",
        currency=currency,
        languages=languages,
        time_zone=time_zone,
        phone_prefix=phone_prefix,
        owner_login=login,
        owner_password=test_password,
        owner_name="First Owner",
    )
    answer = await PlatformServiceStub(channel).CreateBusiness(
        request, metadata=bearer(await operator_key(pool))
    )
    return Founded(
        answer.business_id,
        answer.owner_administrator_id,
        login,
        test_password,
        answer.owner_api_key,
    )


def _document_value(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def legacy_document(sale: SaleReceipt) -> dict[str, Any]:
    """A sale's receipt as sales stored it before migration 0013: the jsonb document that
    `purse.store.postgres.receipts` reads (and `purse migrate` converts)."""
    receipt = sale.receipt
    document: dict[str, Any] = {name: getattr(receipt, name) for name in TOTAL_FIELDS}
    document["lines"] = [[getattr(line, name) for name in LINE_FIELDS] for line in receipt.lines]
    for attribute, _, names in DOCUMENT_FIELDS:
        document[attribute] = [
            [_document_value(getattr(record, name)) for name in names]
            for record in getattr(receipt, attribute)
        ]
    return {
        "receipt": document,
        "coupons": {str(key): code for key, code in sale.coupon_codes.items()},
        "certificates": {str(key): code for key, code in sale.certificate_codes.items()},
        "quantities": {str(position): value for position, value in sale.quantities.items()},
    }
