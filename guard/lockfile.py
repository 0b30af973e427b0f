"""The daemon's lock on its state directory: two daemons never share one."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from guard.errors import DaemonError
from guard.paths import StatePaths


@contextlib.contextmanager
def daemon_lock(paths: StatePaths) -> Iterator[None]:
    """Hold the state directory: a second daemon on the same state refuses to start."""
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(paths.pidfile)
            raise DaemonError(
                f"a daemon is already running on {paths.root}" + (f" (pid {pid})" if pid else "")
            ) from None
        paths.pidfile.write_text(f"{os.getpid()}\n", encoding="utf-8")
        try:
            yield
        finally:
            paths.pidfile.unlink(missing_ok=True)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def daemon_running(paths: StatePaths) -> bool:
    """True while some process holds the state directory's lock."""
    if not paths.lock.exists():
        return False
    fd = os.open(paths.lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
