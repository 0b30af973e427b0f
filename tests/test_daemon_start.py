"""`guard daemon` and `guard up` refuse a config the machine cannot run, and a start that fails anyway says
why in one line: no traceback, no half-minute wait for a bare TimeoutError."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from guard.config import SimSection
from guard.sim.server import SimExchange

ROOT = Path(__file__).resolve().parents[1]
UNRUNNABLE = '[exchange]\nid = "nosuchexchange"\n[model]\npath = "models/nope"\n'


async def _guard(home: Path, *args: str) -> tuple[int, str]:
    """Run the real command line, from the repository (where the shipped model is), with its own GUARD_HOME."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "guard",
        "--config",
        str(home / "config.toml"),
        *args,
        cwd=ROOT,
        env={**os.environ, "GUARD_HOME": str(home)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_guard_daemon_refuses_a_config_the_machine_cannot_run(guard_home: Path) -> None:
    """`guard daemon` names every problem preflight finds and exits 2 before starting anything."""
    (guard_home / "config.toml").write_text(UNRUNNABLE)
    code, err = await _guard(guard_home, "daemon")
    assert code == 2
    assert "exchange.id = 'nosuchexchange'" in err and "model.path = 'models/nope'" in err
    assert "Traceback" not in err
    assert not (guard_home / "journal.db").exists()


async def test_guard_up_refuses_before_starting_a_daemon(guard_home: Path) -> None:
    """`guard up` refuses the same config with every problem, and starts no daemon in the background."""
    (guard_home / "config.toml").write_text(UNRUNNABLE)
    code, err = await _guard(guard_home, "up", "--no-tui")
    assert code == 2
    assert "exchange.id = 'nosuchexchange'" in err and "model.path = 'models/nope'" in err
    assert not (guard_home / "daemon.log").exists() and not (guard_home / "daemon.pid").exists()


async def test_daemon_start_failing_at_the_venue_says_why_in_one_line(guard_home: Path) -> None:
    """A venue that does not list a symbol (known only once the feed asks it) ends `guard daemon` with exit 1
    and that reason on one line, and `guard up` shows the same reason from the daemon's log."""
    async with SimExchange(SimSection(history_bars=30), ("BTC/USDT:USDT",)) as sim:
        (guard_home / "config.toml").write_text(
            '[exchange]\nsymbols = ["BTC/USDT:USDT", "ETH/USDT:USDT"]\n'
            f'[sim]\nurl = "{sim.url}"\n[model]\nenabled = false\n'
        )
        code, err = await _guard(guard_home, "daemon")
        assert code == 1
        [line] = [line for line in err.splitlines() if '"level": "error"' in line]
        assert "sim does not list ETH/USDT:USDT" in line
        assert "Traceback" not in err and "TimeoutError" not in err

        code, err = await _guard(guard_home, "up", "--no-tui")
        assert code == 1
        assert "the daemon exited while starting" in err and "sim does not list ETH/USDT:USDT" in err
