"""Settings, read once from `PURSE_*` environment variables (and overridden by CLI flags).

Nothing here connects to anything; `bootstrap.py` turns settings into running parts.
Every limit has a name with its unit last and an explicit default. `load_settings`
validates what it builds: a value of the wrong type, outside its range or not one of its
choices raises `SettingError` naming the `PURSE_*` variable, so a typo stops the server
at start instead of silently changing what it does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server needs to start; immutable once built."""

    # Where the embedded PostgreSQL and Redis keep their data.
    data_dir: Path = Path(".purse")
    # Load pg_stat_statements into the embedded PostgreSQL, to measure what each statement
    # costs (takes effect when Purse starts it, not when it finds it running).
    embedded_postgres_statement_statistics: bool = False
    # External servers; empty means "start the embedded ones under data_dir".
    database_url: str = ""
    redis_url: str = ""
    # PURSE_REDIS_URL names a node of a Redis Cluster (the others are learnt from it).
    redis_cluster: bool = False
    # Apply missing migrations when the server starts (always done for the embedded default).
    # Off where several servers share a database: a release's migration runs once, alone
    # (`purse migrate`, deploy/kubernetes/migration-job.yaml), not in every replica at once.
    migrate_on_start: bool = True
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # The HTTP port (every RPC as HTTP/JSON, and /metrics): connections and requests at
    # once (more are answered 503), how long a request's head may take to arrive, its
    # largest size, how long a kept-alive connection may idle, the largest body (a stream:
    # line), and how long a unary call may take.
    http_connections_max: int = 1_000
    http_head_seconds_max: float = 10.0
    http_head_bytes_max: int = 16 * 1024
    http_idle_seconds_max: float = 60.0
    http_request_bytes_max: int = 4 * 1024 * 1024
    http_call_seconds_max: float = 30.0
    # Server processes sharing the gRPC port (SO_REUSEPORT when more than one).
    workers: int = 1
    workers_max: int = 64
    # Which worker this process is (0 when there is one); set by the supervisor.
    worker_index: int = 0
    # gRPC server options, always passed explicitly.
    grpc_concurrent_calls_max: int = 10_000
    grpc_concurrent_streams_max: int = 1_000
    grpc_receive_message_bytes_max: int = 4 * 1024 * 1024
    grpc_send_message_bytes_max: int = 16 * 1024 * 1024
    grpc_keepalive_time_ms: int = 60_000
    grpc_keepalive_timeout_ms: int = 20_000
    grpc_keepalive_ping_interval_ms_min: int = 10_000
    # A ProcessChecks stream is closed after this long without a message, and after this
    # long open at all (each while it waits for a message, so nothing in flight is cut).
    stream_idle_seconds_max: float = 300.0
    stream_lifetime_seconds_max: float = 3_600.0
    # How long in-flight calls may take to finish after SIGTERM.
    shutdown_grace_seconds: float = 10.0
    # PostgreSQL pool.
    database_pool_connections_min: int = 2
    database_pool_connections_max: int = 20
    database_statement_timeout_ms: int = 5_000
    database_connect_timeout_seconds: float = 5.0
    redis_connections_max: int = 64
    redis_timeout_seconds: float = 2.0
    # Authentication.
    terminal_token_lifetime_seconds: int = 3_600
    terminal_cache_seconds: float = 5.0
    # How long a program's rules version, as PostgreSQL announced it, is trusted without
    # asking again (a lost announcement the connection did not report costs at most this).
    program_version_trust_seconds: float = 30.0
    terminal_cache_entries_max: int = 100_000
    # Passwords evaluated per login and window: each attempt is reserved before the
    # password is checked; a right password gives its attempt back.
    sign_in_attempts_max: int = 5
    sign_in_attempts_window_seconds: int = 900
    # Password hashes (scrypt) verified at once by this process; more are refused at once
    # (RESOURCE_EXHAUSTED, SIGN_IN_BUSY). Unknown logins compute no hash.
    password_checks_concurrent_max: int = 4
    # Customer list exports (ExportCustomers) running at once in this process, each
    # holding a database connection (more are refused at once: RESOURCE_EXHAUSTED,
    # EXPORTS_BUSY), and how long one may stream (its statement timeout).
    exports_concurrent_max: int = 2
    export_seconds_max: float = 900.0
    # Identification.
    steward_code_lifetime_seconds: int = 300
    # Steward codes a terminal may try that redeem nothing, per window.
    steward_code_guesses_max: int = 10
    steward_code_guesses_window_seconds: int = 600
    # The balance cache for identification (0 turns it off); how long it waits for Redis
    # before a lookup counts as a miss, or a forget after a commit is given up (the value
    # then expires on time).
    balance_cache_seconds: int = 60
    balance_cache_timeout_ms: int = 250
    app_token_window_seconds: int = 30
    # Group commit: operations per batch, the bounded queue, flushes in flight at once.
    # One: while a batch commits the next one gathers, so batches grow with the load; a
    # second flush in flight made smaller batches and cost the database about half as
    # much again per check in the load benchmark, for no more throughput.
    batch_operations_max: int = 500
    batch_queue_operations_max: int = 20_000
    batch_concurrent_max: int = 1
    # A bulk action's share of every batch: at most this many of its operations, after
    # the tills' (see purse.service.coalescing).
    batch_bulk_operations_max: int = 100
    # Bulk actions: members a runner reads and applies at a time, and how often a
    # server looks for running operations (a start on the same process wakes it).
    bulk_chunk_customers_max: int = 500
    bulk_poll_seconds: float = 5.0
    # A pause after every chunk, to slow bulk actions further than the writer's share
    # does (0: none).
    bulk_chunk_pause_ms: int = 0
    # Unary ProcessCheck calls arriving together share their reads, up to this many.
    process_group_checks_max: int = 200
    process_groups_concurrent_max: int = 2
    # How often holds past their program's deadline and expired points are swept.
    hold_sweep_interval_seconds: float = 5.0
    # PINs sent to one phone in one business (new pending sales and resends alike).
    pin_sends_per_phone_max: int = 3
    pin_sends_window_seconds: int = 600
    # Notifications: the outbox dispatcher and where it delivers (console or webhook).
    notify_enabled: bool = True
    notify_provider: str = "console"
    notify_webhook_url: str = ""
    notify_webhook_secret: str = ""
    notify_webhook_timeout_seconds: float = 5.0
    notify_webhook_connections_max: int = 32
    # A push gateway (Expo/FCM-like JSON); when set, push and smart messages go to the
    # customer's device tokens through it, smart ones falling back to the webhook's SMS.
    notify_push_url: str = ""
    notify_push_secret: str = ""
    notify_push_timeout_seconds: float = 5.0
    notify_push_connections_max: int = 32
    notify_batch_messages_max: int = 100
    # What the SMS gateway bills for one segment, in minor units: a bulk action's dry run
    # shows the cost of its messages at this price.
    notify_sms_segment_price_minor_units: int = 0
    notify_poll_interval_ms: int = 500
    notify_attempts_max: int = 8
    notify_backoff_ms_first: int = 1_000
    notify_backoff_ms_max: int = 300_000
    notify_sends_in_flight_max: int = 32
    notify_claim_lease_ms: int = 60_000
    # Sent, rejected and failed messages are deleted this long after they were written.
    notify_retention_days: int = 30
    # Container allocations between two collections of the garbage collector's young
    # generation, once serving (CPython's default is 700): see `_tune_garbage_collector`.
    gc_allocations_per_collection: int = 100_000
    log_level: str = "INFO"
    log_format: str = "json"
    # How long the server waits at start for PostgreSQL and Redis to answer, trying again
    # with backoff (one log line per attempt) before it gives up with one clear line.
    start_dependency_wait_seconds: float = 30.0
    start_dependency_retry_seconds_max: float = 5.0
    # How often the server asks PostgreSQL and Redis whether they answer, and how long
    # each probe may take; gRPC health is NOT_SERVING while one does not.
    health_probe_interval_seconds: float = 1.0
    health_probe_timeout_seconds: float = 2.0
    # How often the gauges of what waits (the batch writer's queue, the outbox's unsent
    # messages, pending holds) are sampled: two of them are counts in PostgreSQL.
    metrics_sample_seconds: float = 5.0

    @property
    def embedded(self) -> bool:
        """True when Purse starts PostgreSQL and/or Redis itself."""
        return not self.database_url or not self.redis_url

    @property
    def migrates_at_start(self) -> bool:
        """True when `purse serve` applies missing migrations before it serves: always on
        the embedded servers it started, else as PURSE_MIGRATE_ON_START says."""
        return self.embedded or self.migrate_on_start


_ENVIRONMENT_PREFIX = "PURSE_"
_true_words = frozenset({"1", "true", "yes", "on"})
_false_words = frozenset({"0", "false", "no", "off", ""})
# Settings that take one of a few words.
setting_choices: dict[str, tuple[str, ...]] = {
    "notify_provider": ("console", "webhook"),
    "log_format": ("json", "text"),
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
}
# URL settings and the schemes each accepts (empty means "not set").
setting_url_schemes: dict[str, tuple[str, ...]] = {
    "database_url": ("postgresql", "postgres"),
    "redis_url": ("redis", "rediss", "unix"),
    "notify_webhook_url": ("http", "https"),
    "notify_push_url": ("http", "https"),
}
# Numbers that may be zero (ports: any free one; 0 turns the balance cache off...); every
# other number must be positive.
settings_zero_allowed = frozenset(
    {
        "worker_index",
        "grpc_port",
        "http_port",
        "shutdown_grace_seconds",
        "balance_cache_seconds",
        "database_pool_connections_min",
        "start_dependency_wait_seconds",
        "bulk_chunk_pause_ms",
        "notify_sms_segment_price_minor_units",
    }
)
port_highest = 65_535


class SettingError(ValueError):
    """A setting that cannot be used; the message names its `PURSE_*` variable."""


def environment_name(setting: str) -> str:
    """`grpc_port` -> `PURSE_GRPC_PORT`."""
    return _ENVIRONMENT_PREFIX + setting.upper()


def _convert(raw: str, current: Any, name: str) -> Any:
    if isinstance(current, bool):
        word = raw.strip().lower()
        if word not in _true_words | _false_words:
            raise ValueError(f"{raw!r} is not one of true, false, yes, no, on, off, 1, 0")
        return word in _true_words
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    if isinstance(current, Path):
        return Path(raw)
    if not isinstance(current, str):
        raise TypeError(f"setting {name} has an unsupported type")
    return raw


def load_settings(environment: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from the environment (`PURSE_GRPC_PORT=...`), then explicit overrides.

    Overrides whose value is None are ignored, so CLI flags that were not given fall
    through to the environment. A malformed or unusable value raises SettingError (a
    ValueError) naming the variable.
    """
    source = os.environ if environment is None else environment
    defaults = Settings()
    values: dict[str, Any] = {}
    for setting in fields(Settings):
        key = _ENVIRONMENT_PREFIX + setting.name.upper()
        if key in source:
            try:
                values[setting.name] = _convert(
                    source[key], getattr(defaults, setting.name), setting.name
                )
            except ValueError as error:
                raise SettingError(f"{key}: {error}") from error
    values.update({name: value for name, value in overrides.items() if value is not None})
    settings = replace(defaults, **values)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """SettingError naming the first setting that is out of range or not a choice."""
    for setting in fields(Settings):
        problem = _problem(setting.name, getattr(settings, setting.name))
        if problem:
            raise SettingError(f"{environment_name(setting.name)}: {problem}")
    pairs = (
        ("database_pool_connections_min", "database_pool_connections_max"),
        ("workers", "workers_max"),
    )
    for low, high in pairs:
        if getattr(settings, low) > getattr(settings, high):
            raise SettingError(
                f"{environment_name(low)}: {getattr(settings, low)} is more than "
                f"{environment_name(high)} ({getattr(settings, high)})"
            )
    _validate_redis_cluster(settings)
    if settings.notify_provider == "webhook" and not settings.notify_webhook_url:
        raise SettingError(
            f"{environment_name('notify_webhook_url')}: required when "
            f"{environment_name('notify_provider')} is webhook"
        )


def _validate_redis_cluster(settings: Settings) -> None:
    """A cluster is reached over TCP, in its only database (0), at a URL of its own."""
    if not settings.redis_cluster:
        return
    name = environment_name("redis_cluster")
    if not settings.redis_url:
        raise SettingError(
            f"{name}: needs {environment_name('redis_url')} (the embedded Redis is one server)"
        )
    parts = urlsplit(settings.redis_url)
    if parts.scheme == "unix":
        raise SettingError(f"{name}: a Redis Cluster is reached over TCP, not a unix socket")
    if parts.path.strip("/") not in ("", "0"):
        raise SettingError(
            f"{name}: a Redis Cluster has database 0 only, not {parts.path.strip('/')!r}"
        )


def _problem(name: str, value: Any) -> str:
    """What is wrong with one setting's value, or an empty string."""
    if name in setting_choices and value not in setting_choices[name]:
        return f"{value!r} is not one of {', '.join(setting_choices[name])}"
    if name in setting_url_schemes and value:
        scheme = urlsplit(value).scheme
        if scheme not in setting_url_schemes[name]:
            wanted = ", ".join(f"{choice}://" for choice in setting_url_schemes[name])
            return f"{value.split('@')[-1]!r} is not a URL starting with {wanted}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    if name in settings_zero_allowed and value < 0:
        return f"{value} is out of range (0 or more)"
    if name not in settings_zero_allowed and value <= 0:
        return f"{value} is out of range (more than 0)"
    if name.endswith("_port") and value > port_highest:
        return f"{value} is not a port (0 to {port_highest})"
    return ""
