"""Several server processes on one port: `purse serve --workers N`.

The supervisor forks N workers after the infrastructure is up and migrated and before
any gRPC object exists (gRPC's core must not be initialised across a fork). Each worker
runs the whole server; they share the gRPC port with SO_REUSEPORT, so the kernel spreads
connections over them. Nothing about money is kept in a worker: every invariant rests on
PostgreSQL (row locks, constraints, idempotency keys), so it holds across workers as it
does across hosts.

They share the HTTP port the same way, and each serves `/metrics` for all of them
(prometheus_client's multiprocess mode, files in `<data dir>/metrics`). The supervisor
forwards SIGTERM and SIGINT, and waits. A worker that
exits on its own takes the others down with it and the supervisor exits non-zero, so the
service manager above (systemd, Kubernetes) restarts the whole set.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import replace
from types import FrameType

from purse.config import Settings

_logger = logging.getLogger(__name__)
metrics_directory_name = "metrics"


def prepare_shared_metrics(settings: Settings) -> str:
    """Point prometheus_client at a fresh directory; call before it is imported."""
    directory = (settings.data_dir / metrics_directory_name).resolve()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return str(directory)


def run_workers(settings: Settings, serve: Callable[[Settings], None]) -> int:
    """Fork `settings.workers` processes running `serve`; return the exit code for all."""
    children: dict[int, int] = {}
    for index in range(settings.workers):
        pid = os.fork()
        if pid == 0:
            _worker(replace(settings, worker_index=index), serve)
        children[pid] = index
    stopping = False

    def forward(signal_number: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    exit_code = 0
    while children:
        pid, status = os.wait()
        _mark_dead(pid)
        if pid not in children:
            continue
        index = children.pop(pid)
        if not stopping:
            _logger.error("worker %d exited on its own (status %d); stopping all", index, status)
            exit_code = 1
            forward(signal.SIGTERM, None)
        elif os.waitstatus_to_exitcode(status) != 0:
            exit_code = 1
    return exit_code


def _worker(settings: Settings, serve: Callable[[Settings], None]) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    code = 0
    try:
        serve(settings)
    except BaseException:
        _logger.exception("worker %d failed", settings.worker_index)
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


# prometheus_client reads PROMETHEUS_MULTIPROC_DIR when it is imported, so this module
# imports it only once `prepare_shared_metrics` has set the variable.
def _mark_dead(pid: int) -> None:
    from prometheus_client import multiprocess  # noqa: PLC0415

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
