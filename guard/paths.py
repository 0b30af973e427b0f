"""Where runtime state lives inside the state directory (GUARD_HOME or the config's state_dir)."""

from __future__ import annotations

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
    def drills(self) -> Path:
        return self.root / "drills"

    @property
    def replays(self) -> Path:
        return self.root / "replays"
