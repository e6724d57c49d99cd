"""The data directory's ownership: one Purse server per directory, and where it listens.

`DataDirectoryLock` is an exclusive `fcntl.flock` on `data_dir/purse.lock`, held for the
life of the process that took it (and of the workers it forks, which share the open file).
The kernel releases it when the process dies, however it dies, so a crash never leaves a
stale lock behind. The file names the holder's pid, so a second server can say who has
the directory. Only the holder starts or stops the embedded PostgreSQL and Redis.

`write_server_target` records the address a running server answers on and its pid
(`data_dir/server-target`), so that `purse terminal` dials the server of this directory
whatever port it was given; the server removes it when it stops, and a record whose
process is gone is ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

lock_file_name = "purse.lock"
server_target_file_name = "server-target"


class DataDirectoryBusy(RuntimeError):
    """Another process holds the data directory; the message names its pid."""


class DataDirectoryLock:
    """An exclusive, non-blocking lock on a data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / lock_file_name
        self._descriptor: int | None = None

    @property
    def held(self) -> bool:
        return self._descriptor is not None

    def acquire(self) -> None:
        """Take the lock, or raise DataDirectoryBusy naming the process that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 64).decode(errors="replace").strip() or "unknown"
            os.close(descriptor)
            raise DataDirectoryBusy(
                f"a Purse server is already running on this data directory "
                f"({self.path.parent}), pid {holder}"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        self._descriptor = descriptor

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; False when another process does."""
        try:
            self.acquire()
        except DataDirectoryBusy:
            return False
        return True

    def release(self) -> None:
        if self._descriptor is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._descriptor, 0)
        os.close(self._descriptor)  # closing releases the flock
        self._descriptor = None


def write_server_target(data_dir: Path, target: str) -> None:
    """Record `target` for this process (the file says which process wrote it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / server_target_file_name).write_text(f"{target}\n{os.getpid()}\n")


def _saved_target(data_dir: Path) -> tuple[str, int]:
    try:
        target, pid_text, *_ = (data_dir / server_target_file_name).read_text().split()
        return target, int(pid_text)
    except (OSError, ValueError):
        return "", 0


def read_server_target(data_dir: Path) -> str:
    """The address the server of `data_dir` answers on, or "" when none runs there."""
    target, pid = _saved_target(data_dir)
    if not pid:
        return ""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return ""  # left behind by a server that crashed
    except PermissionError:
        pass
    return target


def forget_server_target(data_dir: Path) -> None:
    """Remove the record if this process wrote it (another server may have since)."""
    if _saved_target(data_dir)[1] == os.getpid():
        with contextlib.suppress(OSError):
            (data_dir / server_target_file_name).unlink()
