"""Where runtime state lives inside the state directory (GUARD_HOME or the config's state_dir)."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class StatePaths:
    root: Path

    @property
    def journal(self) -> Path:
        return self.root / "journal.db"

    @property
    def socket(self) -> Path:
        return self.root / "guard.sock"

    @property
    def token(self) -> Path:
        return self.root / "token"

    @property
    def pidfile(self) -> Path:
        return self.root / "daemon.pid"

    @property
    def lock(self) -> Path:
        return self.root / "daemon.lock"

    @property
    def log(self) -> Path:
        return self.root / "daemon.log"

    @property
    def endpoint(self) -> Path:
        """Where a TCP daemon writes the host:port it listens on."""
        return self.root / "endpoint"

    @property
    def sim_token(self) -> Path:
        """The control token of a `guard sim` started from this state directory."""
        return self.root / "sim.token"

    @property
    def drills(self) -> Path:
        return self.root / "drills"

    @property
    def replays(self) -> Path:
        return self.root / "replays"


PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def tighten(paths: StatePaths) -> list[str]:
    """Make the state directory 0700 and what the daemon keeps in it (journal, WAL, anchor, log, pidfile,
    token) 0600, and say what was looser. Files created later follow the daemon's umask of 077."""
    loosened: list[str] = []
    candidates = [
        paths.journal,
        paths.journal.with_name(paths.journal.name + "-wal"),
        paths.journal.with_name(paths.journal.name + "-shm"),
        paths.journal.with_name(paths.journal.name + ".anchor"),
        paths.log,
        paths.pidfile,
        paths.token,
        paths.lock,
        paths.endpoint,
        paths.sim_token,
    ]
    for path, wanted in [(paths.root, PRIVATE_DIR), *((p, PRIVATE_FILE) for p in candidates)]:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & ~wanted:
            path.chmod(wanted)
            loosened.append(f"{path} was {oct(mode)}")
    return loosened
