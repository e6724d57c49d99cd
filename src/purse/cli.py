"""The `purse` command: serve, migrate, demo, and a terminal simulator for trying the API.

    purse serve                      the server on the embedded PostgreSQL and Redis
    purse migrate                    apply database migrations
    purse demo                       create a demo business and print its credentials
    purse generate --members 1000000 a demo business of that many members with history
    purse terminal identify --phone +380501234567
    purse terminal calculate --phone +380501234567 --line ESPRESSO:45.00:2 --explain
    purse terminal process --check-number 1001 --phone ... --line ... --points 150
    purse terminal confirm --transaction-id 7 --pin 123456
    purse terminal settings | steward-code | search | register
    purse admin-key --business-id 1   an API key for the control panel (AdminService)
    purse audit                      every pocket against its ledger, no row naming nothing
    purse app-token --phone ...      the customer app's current QR token (for trying it)
    purse reasons --markdown         the error catalogue as docs/errors.md has it (--json: rows)
    purse health                     exit 0 when the local server's gRPC health is SERVING

Settings come from `PURSE_*` environment variables; flags override them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format

from purse.config import Settings, load_settings

if TYPE_CHECKING:  # imported where used: commands load only what they need
    from purse.client import TerminalClient
    from purse.store.postgres.audit import AuditReport
    from purse.tracing import Tracing

_logger = logging.getLogger("purse")
demo_credentials_file = "demo-terminal.json"
# How long `purse demo` waits for the server to answer before saying how to start one.
demo_server_wait_seconds = 5.0
generated_credentials_file = "generated-business.json"
# `purse generate` says how far it got every this many members.
generate_progress_members = 100_000
_purse_command = ".venv/bin/purse"
# How long `purse health` waits for the server's answer (a container health check runs it,
# and a server that cannot answer within this is not healthy).
health_answer_seconds_max = 3.0
# Listen addresses that mean every interface: `purse health` dials loopback instead.
_every_interface = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "[::]": "[::1]", "": "127.0.0.1"}


def _settings(arguments: argparse.Namespace) -> Settings:
    return load_settings(
        data_dir=getattr(arguments, "data_dir", None),
        grpc_host=getattr(arguments, "grpc_host", None),
        grpc_port=getattr(arguments, "grpc_port", None),
        http_host=getattr(arguments, "http_host", None),
        http_port=getattr(arguments, "http_port", None),
        log_format=getattr(arguments, "log_format", None),
        workers=getattr(arguments, "workers", None),
    )


def _serve(arguments: argparse.Namespace) -> int:
    settings = _settings(arguments)
    if not 1 <= settings.workers <= settings.workers_max:
        raise SystemExit(f"--workers: from 1 to {settings.workers_max}")
    from purse.tracing import traces_exporter

    traces_exporter(os.environ)  # a tracing setting Purse cannot use stops it here
    if settings.workers > 1:
        from purse.workers import prepare_shared_metrics

        # Before anything imports prometheus_client: it reads the variable on import.
        prepare_shared_metrics(settings)
    from purse.bootstrap import (
        Infrastructure,
        migrate,
        require_fast_protobuf,
        wait_for_dependencies,
    )
    from purse.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format == "json")
    require_fast_protobuf()
    infrastructure = Infrastructure(settings)
    try:
        resolved = infrastructure.start()
        asyncio.run(wait_for_dependencies(resolved))
        if settings.migrates_at_start:
            applied = asyncio.run(migrate(resolved.database_url))
            if applied:
                _logger.info("migrated", extra={"applied": applied})
        if settings.workers > 1:
            from purse.workers import run_workers

            return run_workers(resolved, _serve_one)
        _serve_one(resolved)
    finally:
        infrastructure.stop()
    return 0


def _serve_one(settings: Settings) -> None:
    import uvloop

    from purse.tracing import start_tracing

    # In each worker: the exporter's thread does not survive a fork.
    tracing = start_tracing()
    try:
        uvloop.run(_run_until_signalled(settings, tracing))
    finally:
        if tracing is not None:
            tracing.shutdown()


async def _run_until_signalled(settings: Settings, tracing: Tracing | None) -> None:
    from purse.bootstrap import Application

    application = Application(settings, tracing)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    try:
        await application.start()
        await stop.wait()
        _logger.info("stopping: letting in-flight calls finish")
    finally:
        await application.stop()
        _logger.info("stopped")


class _LocalDatabase:
    """For admin commands: the configured database, starting the embedded one if needed.

    A command that reads data (`requires_data`) refuses when the embedded data directory
    holds no database, instead of starting an empty one there and reporting on nothing.
    """

    def __init__(
        self, settings: Settings, requires_data: bool = True, migrate: bool = True
    ) -> None:
        from purse.bootstrap import Infrastructure

        self._infrastructure = Infrastructure(settings)
        self.settings = settings
        self._requires_data = requires_data
        self._migrate = migrate

    def __enter__(self) -> Settings:
        if self._requires_data:
            _require_data(self.settings)
        resolved = self._infrastructure.start(stop_only_what_was_started=True)
        from purse.bootstrap import migrate, wait_for_dependencies

        try:
            asyncio.run(wait_for_dependencies(resolved))
            if self._migrate:
                asyncio.run(migrate(resolved.database_url))
        except BaseException:
            self._infrastructure.stop()
            raise
        return resolved

    def __exit__(self, *exc: object) -> None:
        self._infrastructure.stop()


def _require_data(settings: Settings) -> None:
    """SystemExit when the embedded database this command would read does not exist."""
    if settings.database_url:
        return
    if not (settings.data_dir / "postgres" / "PG_VERSION").exists():
        where = settings.data_dir if settings.data_dir.is_absolute() else f"./{settings.data_dir}"
        raise SystemExit(
            f"no Purse data in {where}; run from the folder where the server runs, "
            "or set PURSE_DATA_DIR / PURSE_DATABASE_URL"
        )


def _migrate(arguments: argparse.Namespace) -> int:
    local = _LocalDatabase(_settings(arguments), requires_data=False, migrate=False)
    with local as settings:
        from purse.bootstrap import migrate

        applied = asyncio.run(migrate(settings.database_url))
    print("applied: " + (", ".join(applied) if applied else "nothing, the schema is current"))
    return 0


def _demo(arguments: argparse.Namespace) -> int:
    """Found the demo through the running server's public API, once; run again, it prints
    what the first run created."""
    from dataclasses import asdict

    import grpc

    from purse.demo import create_demo
    from purse.store.data_directory import read_server_target

    settings = _settings(arguments)
    path = Path(settings.data_dir) / demo_credentials_file
    saved: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    target = read_server_target(settings.data_dir) or f"{settings.grpc_host}:{settings.grpc_port}"

    async def exists() -> bool:
        async with grpc.aio.insecure_channel(target) as channel:
            await _server_answers(channel, target)
            return bool(saved) and await _demo_exists(channel, saved)

    async def create(operator_key: str) -> dict[str, Any]:
        async with grpc.aio.insecure_channel(target) as channel:
            return asdict(await create_demo(channel, operator_key))

    created = None
    if not asyncio.run(exists()):
        with _operator_key_for_once(settings) as operator_key:
            created = asyncio.run(create(operator_key))
    if created is None:
        print(f"The demo business already exists; nothing created. Its credentials ({path}):")
    else:
        saved = created
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(saved, indent=2))
        print(f"Created the demo business; credentials saved to {path} (mode 0600):")
    _print_demo(saved)
    return 0


async def _server_answers(channel: Any, target: str) -> None:
    """SystemExit, saying how to start one, when no server answers at `target`."""
    try:
        await asyncio.wait_for(channel.channel_ready(), demo_server_wait_seconds)
    except TimeoutError:
        raise SystemExit(
            f"no Purse server answers at {target}: start one with `make serve`"
        ) from None


def _generate(arguments: argparse.Namespace) -> int:
    """A demo business of --members members with their history: founded through the
    running server's API, its members written by COPY into the server's database."""
    import time

    import grpc

    from purse.generation.founding import Generated, generate
    from purse.store.data_directory import read_server_target

    settings = _settings(arguments)
    target = read_server_target(settings.data_dir) or f"{settings.grpc_host}:{settings.grpc_port}"
    started = time.perf_counter()

    def progress(written: int) -> None:
        if written % generate_progress_members == 0 or written == arguments.members:
            seconds = time.perf_counter() - started
            print(f"  {written:,} of {arguments.members:,} members written ({seconds:.0f} s)")

    async def run(operator_key: str, database_url: str) -> Generated:
        async with grpc.aio.insecure_channel(target) as channel:
            return await generate(
                channel, operator_key, database_url, arguments.members, arguments.seed, progress
            )

    asyncio.run(_answering(target))
    with _operator_key_for_once(settings) as operator_key, _LocalDatabase(settings) as resolved:
        generated = asyncio.run(run(operator_key, resolved.database_url))
    path = Path(settings.data_dir) / generated_credentials_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(dataclasses.asdict(generated.demo), indent=2))
    copied = generated.copied
    print(
        f"Generated {copied.rows['memberships']:,} members with"
        f" {copied.rows['transactions']:,} transactions and {copied.rows['ledger_entries']:,}"
        f" ledger entries in {copied.seconds:.0f} s (phones {generated.phone_prefix}…), then"
        f" settled the tables in {generated.settling_seconds:.0f} s."
    )
    print(f"Credentials saved to {path} (mode 0600):")
    _print_demo(dataclasses.asdict(generated.demo))
    print(f"  {_purse_command} admin sign-in --login {generated.demo.owner_login}")
    print(f"  {_purse_command} admin count-customers")
    return 0


async def _answering(target: str) -> None:
    import grpc

    async with grpc.aio.insecure_channel(target) as channel:
        await _server_answers(channel, target)


async def _demo_exists(channel: Any, saved: dict[str, Any]) -> bool:
    """Whether the saved demo's owner key still opens its business."""
    import grpc

    from purse.admin.v1 import admin_service_pb2
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub

    key = saved.get("administrator_api_key", "")
    try:
        await AdminServiceStub(channel).GetBusiness(
            admin_service_pb2.GetBusinessRequest(), metadata=(("authorization", f"Bearer {key}"),)
        )
    except grpc.aio.AioRpcError:
        return False
    return True


@contextlib.contextmanager
def _operator_key_for_once(settings: Settings) -> Iterator[str]:
    """PURSE_OPERATOR_KEY, else a key made for this run in the instance's database (as
    `purse operator-key create` makes one) and revoked when the run ends."""
    if os.environ.get("PURSE_OPERATOR_KEY"):
        yield os.environ["PURSE_OPERATOR_KEY"]
        return
    from purse.domain import credentials
    from purse.store.postgres import database
    from purse.store.postgres.administrators import OperatorKeyStore

    async def keys(url: str, action: Callable[[OperatorKeyStore], Awaitable[int]]) -> int:
        pool = await database.create_pool(url, 1, 1, 10_000, 10.0)
        try:
            return await action(OperatorKeyStore(pool))
        finally:
            await pool.close()

    key = credentials.new_api_key()
    with _LocalDatabase(settings, requires_data=False) as resolved:
        url = resolved.database_url
        made = asyncio.run(
            keys(url, lambda store: store.add("purse demo", credentials.api_key_digest(key)))
        )
        try:
            yield key
        finally:

            async def revoke(store: OperatorKeyStore) -> int:
                await store.revoke(made)
                return made

            asyncio.run(keys(url, revoke))


def _print_demo(demo: dict[str, Any]) -> None:
    from purse.demo import demo_customer_card, demo_customer_phone

    purse = _purse_command
    print(f"  business    {demo['business_name']!r} (id {demo['business_id']})")
    print(f"  cash desk   login {demo['cash_desk_login']}  password {demo['cash_desk_password']}")
    print(f"  cash desk   API key {demo['cash_desk_api_key']}  (used by `purse terminal`)")
    print(
        f"  waiter app  login {demo['steward_login']}  password {demo['steward_password']}"
        "  (used by `purse terminal --steward`)"
    )
    print(f"  control panel API key {demo['administrator_api_key']} (program {demo['program_id']})")
    if "owner_login" in demo:
        print(f"  owner       login {demo['owner_login']}  password {demo['owner_password']}")
    print(f"  customer    {demo_customer_phone}, card {demo_customer_card}, 250 points,")
    print(
        f"              coupon {demo['coupon_code']} (free espresso); certificate "
        f"{demo['certificate_code']} (500.00)"
    )
    print("Try:")
    print(f"  {purse} terminal identify --phone {demo_customer_phone}")
    print(
        f"  {purse} terminal calculate --phone {demo_customer_phone} --line CAPPUCCINO:65.00:2 "
        f"--line ESPRESSO:45.00 --points 50 --coupon {demo['coupon_code']} --explain"
    )


def _terminal_credentials(arguments: argparse.Namespace) -> dict[str, str]:
    """Flags, then PURSE_TERMINAL_* variables, then the credentials `purse demo` saved.

    The target: --target, PURSE_TERMINAL_TARGET, the address the server running on this
    data directory recorded, then the configured gRPC host and port.
    """
    from purse.store.data_directory import read_server_target

    settings = load_settings()
    found = {
        "target": arguments.target or os.environ.get("PURSE_TERMINAL_TARGET", ""),
        "api_key": arguments.api_key or os.environ.get("PURSE_TERMINAL_API_KEY", ""),
        "login": arguments.login or os.environ.get("PURSE_TERMINAL_LOGIN", ""),
        "password": arguments.password or os.environ.get("PURSE_TERMINAL_PASSWORD", ""),
    }
    saved = settings.data_dir / demo_credentials_file
    if not found["api_key"] and not found["login"] and saved.exists():
        demo = json.loads(saved.read_text())
        if arguments.steward:
            found["login"] = demo.get("steward_login", "")
            found["password"] = demo.get("steward_password", "")
        else:
            found["api_key"] = demo.get("cash_desk_api_key", demo.get("api_key", ""))
    found["target"] = (
        found["target"]
        or read_server_target(settings.data_dir)
        or f"{settings.grpc_host}:{settings.grpc_port}"
    )
    return found


async def _terminal_command(arguments: argparse.Namespace) -> tuple[Any, Any]:
    """The answer, and the terminal's settings when the answer is to be read by a person
    (their currency gives money its decimals), else None."""
    from purse.client import TerminalClient

    found = _terminal_credentials(arguments)
    if not found["api_key"] and not (found["login"] and found["password"]):
        raise SystemExit(
            "no terminal credentials: pass --api-key or --login/--password, set "
            "PURSE_TERMINAL_API_KEY, or run `purse demo` first"
        )
    async with TerminalClient(
        found["target"], api_key=found["api_key"], login=found["login"],
        password=found["password"],
    ) as terminal:  # fmt: skip
        answer = await _act(terminal, arguments, _identity(arguments))
        if arguments.json:
            return answer, None
        if arguments.action == "settings":
            return answer, answer
        return answer, (await terminal.get_terminal_settings()).raw


def _identity(arguments: argparse.Namespace) -> dict[str, str]:
    return {
        key: value
        for key, value in (
            ("phone", getattr(arguments, "phone", "")),
            ("card_number", getattr(arguments, "card", "")),
            ("card_qr", getattr(arguments, "card_qr", "")),
            ("app_token", getattr(arguments, "app_token", "")),
            ("steward_code", getattr(arguments, "steward_code", "")),
        )
        if value
    }


async def _act(
    terminal: TerminalClient, arguments: argparse.Namespace, identity: dict[str, str]
) -> Any:
    """The answer's message (a list of them for `search`)."""
    from purse.client import identifier

    action = arguments.action
    if action in ("calculate", "process"):
        settings = await terminal.get_terminal_settings()
        request = _calculate_request(
            arguments, identity, settings.currency, settings.currency_exponent
        )
        if action == "calculate":
            return (await terminal.calculate_check(request)).raw
        return (await terminal.process_check(_process_request(request, arguments.check_number))).raw
    if action == "search":
        found = await terminal.search_customers(
            phone_prefix=arguments.phone_prefix or None, card_number=arguments.card or None
        )
        return [customer.raw for customer in found.customers]
    simple: dict[str, Callable[[], Awaitable[Any]]] = {
        "identify": lambda: terminal.identify(**identity),
        "settings": terminal.get_terminal_settings,
        "steward-code": lambda: terminal.issue_steward_code(identifier=identifier(**identity)),
        "confirm": lambda: terminal.confirm_transaction(
            transaction_id=arguments.transaction_id, pin=arguments.pin
        ),
        "cancel": lambda: terminal.cancel_transaction(transaction_id=arguments.transaction_id),
        "refund": lambda: terminal.refund_transaction(
            transaction_id=arguments.transaction_id, refund_number=arguments.refund_number
        ),
    }
    if action in simple:
        return (await simple[action]()).raw
    assert action == "register"
    return (await terminal.register_customer(
        phone=arguments.phone, given_name=arguments.given_name or "",
        family_name=arguments.family_name or "", language=arguments.language or "",
        card_number=arguments.card or "", personal_data_consent=arguments.consent,
    )).raw  # fmt: skip


def _minor_units(text: str, exponent: int, what: str) -> int:
    from decimal import Decimal, InvalidOperation

    try:
        scaled = Decimal(text) * (10**exponent)
    except InvalidOperation as error:
        raise SystemExit(f"{what}: {text!r} is not a number") from error
    if scaled != scaled.to_integral_value():
        raise SystemExit(f"{what}: {text!r} has more than {exponent} decimals")
    return int(scaled)


def _calculate_request(
    arguments: argparse.Namespace, identity: dict[str, str], currency: str, exponent: int
) -> Any:
    """A CalculateCheckRequest from `--line CODE:PRICE:QUANTITY` and the redemption flags."""
    from purse.domain.amounts import amount_of
    from purse.v1 import common_pb2
    from purse.v1 import terminal_service_pb2 as pb

    request = pb.CalculateCheckRequest(check=pb.Check(currency=currency), explain=arguments.explain)
    if identity:
        request.identifier.CopyFrom(common_pb2.CustomerIdentifier(**identity))
    for position, line in enumerate(arguments.line, start=1):
        code, price_text, *rest = line.split(":")
        price = _minor_units(price_text, exponent, f"--line {line}")
        quantity = _minor_units(rest[0] if rest else "1", 3, f"--line {line}")
        request.check.lines.add(
            position=position,
            product_code=code,
            price_minor_units=price,
            quantity_thousandths=quantity,
            amount_minor_units=amount_of(price, quantity),
        )
    request.redemption.points_hundredths = _minor_units(arguments.points or "0", 2, "--points")
    request.redemption.points_maximum = arguments.points_maximum
    request.redemption.coupon_codes.extend(arguments.coupon or ())
    request.redemption.certificate_codes.extend(arguments.certificate or ())
    for account in arguments.account or ():
        type_id, _, amount = account.partition(":")
        request.redemption.account_payments.add(
            account_type_id=int(type_id),
            maximum=amount in ("", "max"),
            amount=0 if amount in ("", "max") else int(amount),
        )
    return request


def _audit(arguments: argparse.Namespace) -> int:
    """Exit 0 when every pocket matches its ledger and no row names what does not exist,
    1 (listing each finding) when not."""

    async def run(url: str) -> AuditReport:
        import asyncpg

        from purse.store.postgres.audit import audit

        connection = await asyncpg.connect(url)
        try:
            return await audit(connection, getattr(arguments, "business_id", None))
        finally:
            await connection.close()

    with _LocalDatabase(_settings(arguments)) as settings:
        report = asyncio.run(run(settings.database_url))
    for discrepancy in report.discrepancies:
        print(discrepancy.describe())
    for orphans in report.orphans:
        print(orphans.describe())
    print(
        f"{report.pockets_checked} pockets checked, {len(report.discrepancies)} discrepancies,"
        f" {report.orphaned_rows()} orphaned rows"
    )
    return 0 if report.clean else 1


def _process_request(calculate: Any, check_number: str) -> Any:
    from purse.v1 import terminal_service_pb2 as pb

    request = pb.ProcessCheckRequest(
        check_number=check_number, check=calculate.check, redemption=calculate.redemption
    )
    if calculate.HasField("identifier"):
        request.identifier.CopyFrom(calculate.identifier)
    return request


def _admin_key(arguments: argparse.Namespace) -> int:
    """A key of the business's keys-only owner, printed once."""

    async def keep(pool: Any, digest: bytes) -> None:
        from purse.store.postgres.provisioning import Provisioning

        await Provisioning(pool).admin_api_key(arguments.business_id, digest, arguments.name)

    return _new_key(arguments, keep)


def _operator_key(arguments: argparse.Namespace) -> int:
    """A new operator key, printed once; the database keeps its digest."""

    async def keep(pool: Any, digest: bytes) -> None:
        from purse.store.postgres.administrators import OperatorKeyStore

        await OperatorKeyStore(pool).add(arguments.name, digest)

    return _new_key(arguments, keep)


def _new_key(arguments: argparse.Namespace, keep: Callable[[Any, bytes], Awaitable[None]]) -> int:
    """A fresh API key, its digest kept by `keep` in the local database, printed once."""
    from purse.domain import credentials

    async def create(url: str) -> None:
        import asyncpg

        pool: asyncpg.Pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
        try:
            await keep(pool, credentials.api_key_digest(key))
        finally:
            await pool.close()

    key = credentials.new_api_key()
    with _LocalDatabase(_settings(arguments)) as settings:
        asyncio.run(create(settings.database_url))
    print(key)
    return 0


def _business_create(arguments: argparse.Namespace) -> int:
    """The operator's CreateBusiness, run on the server's machine against its database."""
    import getpass

    from purse.domain.errors import DomainError
    from purse.service.admin.business import BusinessSettings, languages_or_default
    from purse.service.platform import FoundedBusiness, NewOwner

    password = os.environ.get("PURSE_OWNER_PASSWORD") or getpass.getpass("Owner's password: ")
    settings_sent = BusinessSettings(
        arguments.name,
        arguments.currency,
        languages_or_default(arguments.language or ()),
        arguments.time_zone,
        arguments.phone_prefix,
    )
    owner = NewOwner(arguments.owner_login, password, arguments.owner_name)

    async def create(url: str) -> FoundedBusiness:
        import asyncpg

        from purse.service.platform import Platform
        from purse.store.postgres import database
        from purse.store.postgres.administrators import AdministratorStore, OperatorKeyStore
        from purse.store.postgres.back_office import BackOfficeWrites

        pool: asyncpg.Pool = await database.create_pool(url, 1, 1, 30_000, 10.0)
        try:
            platform = Platform(
                BackOfficeWrites(pool), AdministratorStore(pool), OperatorKeyStore(pool), 0
            )
            return await platform.create_business(settings_sent, owner)
        finally:
            await pool.close()

    with _LocalDatabase(_settings(arguments)) as settings:
        try:
            founded = asyncio.run(create(settings.database_url))
        except DomainError as refusal:
            print(f"refused: {refusal}", file=sys.stderr)
            return 2
    if arguments.json:
        print(json.dumps(dataclasses.asdict(founded), indent=2))
        return 0
    print(f"business {founded.business_id} created")
    print(f"owner administrator {founded.owner_administrator_id}: {arguments.owner_login}")
    print(f"owner API key (shown once): {founded.owner_api_key}")
    return 0


def _print_answer(answer: Any, settings: Any) -> None:
    """JSON as the API answers (`--json`, settings None), else lines in their units."""
    from purse.cli_output import render

    messages = answer if isinstance(answer, list) else [answer]
    for message in messages:
        if settings is None:
            print(json.dumps(json_format.MessageToDict(message), indent=2, ensure_ascii=False))
            continue
        fields = json_format.MessageToDict(message, preserving_proto_field_name=True)
        print("\n".join(render(fields, settings.currency, settings.currency_exponent)))


def _terminal(arguments: argparse.Namespace) -> int:
    from purse.client import PurseError

    try:
        _print_answer(*asyncio.run(_terminal_command(arguments)))
    except PurseError as error:
        print(f"error: {error.code.name} {error.reason}: {error.message}", file=sys.stderr)
        for field, description in error.field_violations.items():
            print(f"  {field}: {description}", file=sys.stderr)
        return 1
    return 0


def _app_token(arguments: argparse.Namespace) -> int:
    import time

    from purse.domain import credentials, identifiers

    async def token(url: str) -> str:
        import asyncpg

        connection = await asyncpg.connect(url)
        try:
            phone = identifiers.normalize_phone(arguments.phone)
            customer_id = await connection.fetchval(
                "SELECT customer_id FROM customers WHERE phone = $1", phone
            )
            if customer_id is None:
                raise SystemExit(f"no customer with phone {phone}")
            secret = await connection.fetchval(
                "SELECT value FROM instance_secrets WHERE name = 'signing'"
            )
        finally:
            await connection.close()
        key = credentials.derive_key(secret, "app-token")
        return credentials.issue_app_token(
            key, customer_id, time.time(), settings.app_token_window_seconds
        )

    with _LocalDatabase(_settings(arguments)) as settings:
        print(asyncio.run(token(settings.database_url)))
    return 0


def _reasons(arguments: argparse.Namespace) -> int:
    from purse.domain import reasons

    if arguments.json:
        print(json.dumps(reasons.catalogue_rows(), ensure_ascii=False, indent=2))
    else:
        print(reasons.catalogue_markdown(), end="")
    return 0


def _health(arguments: argparse.Namespace) -> int:
    """Ask a server's gRPC health service (`grpc.health.v1`); 0 when SERVING, else 1.

    Without --target it dials this machine's server as PURSE_GRPC_HOST and _PORT configure
    it, which is what a container's health check needs.
    """
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    target = arguments.target
    if not target:
        settings = load_settings()
        host = _every_interface.get(settings.grpc_host, settings.grpc_host)
        target = f"{host}:{settings.grpc_port}"
    request = health_pb2.HealthCheckRequest(service=arguments.service)
    with grpc.insecure_channel(target) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                request, timeout=arguments.timeout_seconds
            )
        except grpc.RpcError as error:
            print(f"{target}: {error.code().name}", file=sys.stderr)
            return 1
    serving = answer.status == health_pb2.HealthCheckResponse.SERVING
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    print(f"{target}: {status}", file=sys.stdout if serving else sys.stderr)
    return 0 if serving else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="purse", description="Purse loyalty processing core")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--data-dir", type=Path, help="embedded data directory (PURSE_DATA_DIR)")
    serve.add_argument("--grpc-host", help="gRPC listen address (PURSE_GRPC_HOST)")
    serve.add_argument("--grpc-port", type=int, help="gRPC port (PURSE_GRPC_PORT)")
    serve.add_argument("--http-host", help="metrics listen address (PURSE_HTTP_HOST)")
    serve.add_argument("--http-port", type=int, help="metrics port (PURSE_HTTP_PORT)")
    serve.add_argument("--log-format", choices=("json", "text"), help="(PURSE_LOG_FORMAT)")
    serve.add_argument(
        "--workers", type=int, help="server processes sharing the port (PURSE_WORKERS)"
    )
    serve.set_defaults(handler=_serve)
    for name, handler, text in (
        ("migrate", _migrate, "apply database migrations"),
        ("demo", _demo, "create a demo business and print its credentials"),
        (
            "audit",
            _audit,
            "recompute every pocket from the ledger, find rows naming what does not exist;"
            " non-zero exit on any finding",
        ),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--data-dir", type=Path, help="embedded data directory")
        command.set_defaults(handler=handler)
        if name == "audit":
            command.add_argument("--business-id", type=int, help="only this business")
    _generate_parser(commands)
    token = commands.add_parser("app-token", help="the customer app's current QR token")
    token.add_argument("--phone", required=True)
    token.add_argument("--data-dir", type=Path)
    token.set_defaults(handler=_app_token)
    admin_key = commands.add_parser("admin-key", help="create a control panel API key")
    admin_key.add_argument("--business-id", type=int, required=True)
    admin_key.add_argument("--name", default="")
    admin_key.add_argument("--data-dir", type=Path)
    admin_key.set_defaults(handler=_admin_key)
    operator_key = commands.add_parser(
        "operator-key", help="create an operator key for PlatformService (printed once)"
    )
    operator_key.add_argument("action", choices=["create"])
    operator_key.add_argument("--name", default="")
    operator_key.add_argument("--data-dir", type=Path)
    operator_key.set_defaults(handler=_operator_key)
    business = commands.add_parser(
        "business",
        help="create a business and its first owner (on the server's machine)",
        description="Create a business with its default customer category and first owner."
        " The owner's password comes from PURSE_OWNER_PASSWORD, else it is asked for.",
    )
    business.add_argument("action", choices=["create"])
    business.add_argument("--name", required=True)
    business.add_argument("--currency", required=True, help="ISO 4217, e.g. UAH")
    business.add_argument("--language", action="append", help="BCP 47; repeat; first = default")
    business.add_argument("--time-zone", default="UTC")
    business.add_argument("--phone-prefix", default="", help="e.g. +380")
    business.add_argument("--owner-login", required=True)
    business.add_argument("--owner-name", default="")
    business.add_argument("--json", action="store_true", help="print the answer as JSON")
    business.add_argument("--data-dir", type=Path)
    business.set_defaults(handler=_business_create)
    _operations_parsers(commands)
    _terminal_parser(commands)
    _admin_parser(commands)
    return parser


def _operations_parsers(commands: Any) -> None:
    """`purse reasons` and `purse health`: what an operator asks of a running system."""
    catalogue = commands.add_parser(
        "reasons", help="the error catalogue: every ErrorInfo reason, its status and what to do"
    )
    form = catalogue.add_mutually_exclusive_group()
    form.add_argument("--markdown", action="store_true", help="docs/errors.md (the default)")
    form.add_argument("--json", action="store_true", help="one JSON object a reason")
    catalogue.set_defaults(handler=_reasons)
    health = commands.add_parser(
        "health", help="exit 0 when the server's gRPC health is SERVING, else 1"
    )
    health.add_argument("--target", help="host:port (default: PURSE_GRPC_HOST and _PORT)")
    health.add_argument("--service", default="", help="a service's name (default: the server)")
    health.add_argument(
        "--timeout-seconds",
        type=float,
        default=health_answer_seconds_max,
        help="how long to wait for the answer (%(default)s)",
    )
    health.set_defaults(handler=_health)


def _generate_parser(commands: Any) -> None:
    from purse.generation import members_default, seed_default

    generate = commands.add_parser(
        "generate",
        help="a demo business of many members with their history (for trying it at size)",
        description="Found the demo's coffee shop through the running server's API (three"
        " points of sale, four categories), then write its members with their sales, points"
        " and special points straight into the server's database by COPY (a million in"
        " about two minutes), and print the credentials `purse demo` prints.",
    )
    generate.add_argument(
        "--members", type=int, default=members_default, help="how many (default 1,000,000)"
    )
    generate.add_argument(
        "--seed", type=int, default=seed_default, help="the same seed makes the same members"
    )
    generate.add_argument("--data-dir", type=Path, help="embedded data directory")
    generate.set_defaults(handler=_generate)


def _admin_parser(commands: Any) -> None:
    admin = commands.add_parser(
        "admin",
        help="the control panel's calls (sign in first, or give an API key)",
        description="Every AdminService RPC as a command in kebab case"
        " (create-point-of-sale calls CreatePointOfSale); `purse admin commands` lists them."
        " The request is protobuf JSON (or - for stdin) with --set PATH=VALUE for single"
        " fields. Credentials: --api-key, PURSE_ADMIN_API_KEY, else the token"
        " `purse admin sign-in --login …` saved (password from PURSE_ADMIN_PASSWORD or asked).",
    )
    admin.add_argument(
        "command",
        help="sign-in, sign-out, commands, watch-operation, or an RPC in kebab case",
    )
    admin.add_argument(
        "request", nargs="?", default="", help="the request as JSON, or -; watch-operation: its id"
    )
    admin.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    admin.add_argument("--login", default="", help="sign-in: the administrator's login")
    admin.add_argument("--api-key", default="")
    admin.add_argument("--target", default="")
    admin.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    admin.add_argument("--data-dir", type=Path)
    admin.set_defaults(handler=_admin)


def _admin(arguments: argparse.Namespace) -> int:
    from purse import admin_cli

    return admin_cli.run(arguments)


_terminal_description = """Act as a point-of-sale terminal against a running server.

Credentials: --api-key, or --login/--password, or PURSE_TERMINAL_API_KEY (or _LOGIN and
_PASSWORD), else the cash desk `purse demo` saved in the data directory (--steward: its
waiter app). Server: --target, PURSE_TERMINAL_TARGET, else the server running on this
data directory (PURSE_DATA_DIR, default ./.purse), else PURSE_GRPC_HOST:PURSE_GRPC_PORT.

Answers print as lines with amounts in their units (money with the currency's decimals,
points, product units); --json after the action prints the API's answer as it is
(int64 amounts as strings in minor units, hundredths of a point, thousandths)."""

_actions_help = {
    "identify": "find a customer by one identifier (an unknown phone may be enrolled)",
    "steward-code": "as a waiter app (--steward): a one-time code for the customer",
    "calculate": "the recalculated receipt of a check; changes nothing",
    "process": "calculate and apply a check (idempotent per --check-number)",
    "confirm": "confirm a pending transaction with the PIN the customer received",
    "cancel": "release a pending transaction, or reverse a sale of today",
    "refund": "refund everything of a sale not refunded yet",
    "settings": "the program, customer categories and account types",
    "search": "customers by phone prefix (4 digits or more) or card number",
    "register": "register a customer with this business's personal data",
}


def _terminal_parser(commands: Any) -> None:
    terminal = commands.add_parser(
        "terminal",
        help="act as a POS terminal against a server",
        description=_terminal_description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    terminal.add_argument("--target", help="host:port of the server")
    terminal.add_argument("--api-key", help="a terminal API key")
    terminal.add_argument("--login", help="a terminal login (with --password)")
    terminal.add_argument("--password", help="the terminal's password")
    terminal.add_argument(
        "--steward", action="store_true", help="use the demo's waiter app login, not its cash desk"
    )
    terminal.set_defaults(handler=_terminal)
    actions = terminal.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in _actions_help.items():
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    for name in ("identify", "steward-code", "calculate", "process"):
        group = actions.choices[name].add_mutually_exclusive_group(
            required=name in ("identify", "steward-code")
        )
        group.add_argument("--phone", help="E.164 (+380501234567) or local (0501234567)")
        group.add_argument("--card", help="plastic card number")
        group.add_argument("--card-qr", help="the QR code printed on a card")
        group.add_argument("--app-token", help="the customer app's QR token (purse app-token)")
        if name != "steward-code":
            group.add_argument("--steward-code", help="the code `steward-code` printed")
    for name in ("calculate", "process"):
        _check_options(actions.choices[name])
    actions.choices["process"].add_argument(
        "--check-number", required=True, help="the POS's unique number (idempotency key)"
    )
    transaction_id = "the transaction id `process` printed"
    actions.choices["confirm"].add_argument(
        "--transaction-id", type=int, required=True, help=transaction_id
    )
    actions.choices["confirm"].add_argument(
        "--pin", required=True,
        help="the 6-digit PIN sent to the customer (the console provider prints it on the "
        "server's output: \"Your Purse code: ...\")",
    )  # fmt: skip
    actions.choices["cancel"].add_argument(
        "--transaction-id", type=int, required=True, help=transaction_id
    )
    refund = actions.choices["refund"]
    refund.add_argument("--transaction-id", type=int, required=True, help=transaction_id)
    refund.add_argument(
        "--refund-number", required=True, help="unique per refund (idempotency key)"
    )
    group = actions.choices["search"].add_mutually_exclusive_group(required=True)
    group.add_argument("--phone-prefix", help="the first 4 or more digits, e.g. 0501 or +38050")
    group.add_argument("--card", help="a card number")
    register = actions.choices["register"]
    register.add_argument("--phone", required=True, help="E.164 or local")
    register.add_argument("--given-name", help="this business's record only")
    register.add_argument("--family-name", help="this business's record only")
    register.add_argument("--language", help="BCP 47 tag (uk, en) for the texts it sends")
    register.add_argument("--card", help="a card number to attach")
    register.add_argument("--consent", action="store_true", help="personal data consent given")


def _check_options(check: argparse.ArgumentParser) -> None:
    check.add_argument(
        "--line", action="append", required=True,
        help="PRODUCT_CODE:PRICE[:QUANTITY], price in currency units, e.g. LATTE:70.00:2",
    )  # fmt: skip
    check.add_argument("--points", help="points to redeem, e.g. 12.5")
    check.add_argument("--points-maximum", action="store_true", help="redeem all allowed")
    check.add_argument("--coupon", action="append", help="a coupon code to apply (repeatable)")
    check.add_argument("--certificate", action="append", help="a certificate code (repeatable)")
    check.add_argument(
        "--account", action="append",
        help="pay from a customer account: ACCOUNT_TYPE_ID:AMOUNT, or ACCOUNT_TYPE_ID:max",
    )  # fmt: skip
    check.add_argument("--explain", action="store_true", help="list rules that did not apply")


def main(argv: Sequence[str] | None = None) -> int:
    from purse.config import SettingError

    arguments = _parser().parse_args(argv)
    try:
        result: int = arguments.handler(arguments)
    except SettingError as error:
        print(f"purse {arguments.command}: configuration: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        from purse.bootstrap import DependencyUnavailable
        from purse.store.data_directory import DataDirectoryBusy

        if not isinstance(error, DataDirectoryBusy | DependencyUnavailable):
            raise
        print(f"purse {arguments.command}: {error}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
