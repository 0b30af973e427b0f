"""A real daemon in the background, started and stopped the way a user does it: `guard up --no-tui`, `guard down`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Shell:
    """Runs `guard` as a separate process against one state directory, as a person at a shell would."""

    home: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "GUARD_HOME": str(self.home)}

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "guard", "--config", str(self.home / "config.toml"), *args]

    def run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, cwd=ROOT, env=self.env, timeout=timeout
        )


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    """A daemon (embedded sim at 60x, no model) started with `guard up --no-tui`; `guard down` at the end."""
    home = tmp_path_factory.mktemp("guard-home")
    (home / "config.toml").write_text("[model]\nenabled = false\n[sim]\nspeed = 60.0\n")
    sh = Shell(home)
    up = sh.run("up", "--no-tui")
    assert up.returncode == 0, up.stderr
    try:
        yield sh
    finally:
        down = sh.run("down")
        assert down.returncode == 0, down.stderr
