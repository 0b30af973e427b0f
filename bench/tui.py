"""The operator console under load: a real daemon with 10 symbols streaming (200 marks/s) and 1,000 pending
proposals; the console is `guard tui`, its own process in a pseudo-terminal (160×48), timed from outside on the
bytes it writes to the terminal, the way a person sees it."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import random
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from guard.api.client import ApiClient
from guard.config import config_from_dict
from guard.daemon import Daemon, running
from guard.domain import MarkPrice, OrderType, ProposalRequest, Side, TradingState
from guard.logs import configure

BASES = ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "BNB", "AVAX", "LINK", "DOT")
SYMBOLS = tuple(f"{b}/USDT:USDT" for b in BASES)
PENDING = 1_000
MARKS_PER_SECOND = 200
COLS, ROWS = 160, 48
HALTED_BADGE = re.compile(rb"\x1b\[[0-9;:]*m HALTED ")
"""The banner's state badge, right after its colour: the log's "ACTIVE -> HALTED" lines do not match."""


def _config(home: Path) -> Any:
    return config_from_dict(
        {
            "guard": {"state_dir": str(home)},
            "exchange": {"symbols": list(SYMBOLS)},
            "model": {"enabled": False},
            "sim": {"speed": 1.0},
            "feed": {"stale_after_seconds": 120.0},
            "approval": {"max_pending": 5_000, "ttl_seconds": 3_600.0},
            "operators": {"heartbeat_timeout_seconds": 3_600.0},
            "paper": {"starting_balance": 1_000_000},
            "risk": {"max_orders_per_minute": 10_000, "max_gross_exposure": 10_000_000},
        }
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Terminal:
    """A pseudo-terminal running one command; a thread records every byte it writes, with its arrival time."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.spawned = time.perf_counter()
        self.proc = subprocess.Popen(
            command, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True
        )
        os.close(slave)
        self.master = master
        self._data = bytearray()
        self._arrivals: list[tuple[int, float]] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True, name="pty-reader").start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            now = time.perf_counter()
            with self._changed:
                self._data += chunk
                self._arrivals.append((len(self._data), now))
                self._changed.notify_all()

    def mark(self) -> int:
        """Where the output is now: later waits look only at what comes after."""
        with self._changed:
            return len(self._data)

    def press(self, key: bytes) -> float:
        """Type a key; returns when it was sent."""
        sent = time.perf_counter()
        os.write(self.master, key)
        return sent

    def wait_for(self, pattern: bytes | re.Pattern[bytes], since: int, within: float) -> float | None:
        """When `pattern` first appeared in the output after `since` (perf_counter), or None."""
        deadline = time.monotonic() + within
        with self._changed:
            while True:
                window = bytes(self._data[since:])
                if isinstance(pattern, bytes):
                    at = window.find(pattern)
                    end = at + len(pattern)
                else:
                    found = pattern.search(window)
                    at, end = (found.start(), found.end()) if found else (-1, -1)
                if at >= 0:
                    return next(t for offset, t in self._arrivals if offset >= since + end)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)

    def tail(self, n: int = 2000) -> bytes:
        """The last bytes written (for errors)."""
        with self._changed:
            return bytes(self._data[-n:])

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.write(self.master, b"q")  # quit as a person would (a profiler writes its file on a clean exit)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        os.close(self.master)


@dataclass
class Feeder:
    """Marks for every symbol at a fixed total rate, into the daemon the way its feed pump puts them."""

    daemon: Daemon
    rate: int
    sent: int = 0

    async def run(self) -> None:
        desk, hub = self.daemon.desk, self.daemon.hub
        assert desk is not None and hub is not None
        tick = len(SYMBOLS) / self.rate
        rng = random.Random(7)
        next_at = time.monotonic()
        while True:
            for symbol in SYMBOLS:
                base = float(desk.marks.get(symbol, 100.0))
                mark = base * (1 + rng.gauss(0, 1e-5))
                await desk.on_market(MarkPrice(symbol, desk.clock.now_ms(), mark))
                hub.on_mark(symbol, mark)
                self.sent += 1
            next_at += tick
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def _fill(daemon: Daemon, n: int) -> list[str]:
    """Three open positions, then `n` pending proposals; returns the queue's ids, oldest first."""
    desk = daemon.desk
    assert desk is not None
    for symbol in SYMBOLS[:3]:
        result = await desk.propose(_request(symbol, Side.BUY, desk))
        assert result.ok and result.proposal is not None, result.reason
        await desk.approve(result.proposal.id, "bench-operator")
    for i in range(n):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        result = await desk.propose(_request(symbol, Side.BUY if i % 3 else Side.SELL, desk))
        assert result.ok, result.reason
    pending = sorted(desk.state.pending(), key=lambda r: (r.proposal.created_at, r.proposal.id))
    return [r.proposal.id for r in pending]


def _request(symbol: str, side: Side, desk: Any) -> ProposalRequest:
    spec = desk.specs[symbol]
    price = float(desk.marks[symbol])
    qty = max(spec.min_qty, spec.round_qty(Decimal(str(200 / price))))  # about 200 USDT, within the market's steps
    return ProposalRequest(
        symbol,
        side,
        qty,
        Decimal(2),
        order_type=OrderType.MARKET,
        confidence=0.66,
        novelty=0.4,
        sigma=0.0002,
        source="operator",
        why="bench",
    )


async def _wait(condition: Any, within: float = 30.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - the daemon's state has no event to wait on
            await asyncio.sleep(0.02)


def _trace(daemon: Daemon, marks: dict[str, float]) -> None:
    """Debugging aid: when the daemon got the kill and when it published HALTED."""
    from guard.api.protocol import StatusChanged

    desk, hub = daemon.desk, daemon.hub
    kill, publish = desk.kill, hub.publish

    async def traced_kill(*args: Any, **kw: Any) -> Any:
        marks["daemon got kill"] = time.perf_counter()
        return await kill(*args, **kw)

    def traced_publish(message: Any) -> None:
        if isinstance(message, StatusChanged) and message.status.trading_state is TradingState.HALTED:
            marks.setdefault("daemon published HALTED", time.perf_counter())
        publish(message)

    desk.kill = traced_kill  # type: ignore[method-assign]
    hub.publish = traced_publish  # type: ignore[method-assign]


async def _settle(term: Terminal, below: float = 25.0, within: float = 30.0) -> None:
    """Wait until the console has digested a burst (a thousand proposals arriving): its CPU use drops."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        cpu0, t0 = term.cpu_seconds(), time.perf_counter()
        await asyncio.sleep(0.5)
        if (term.cpu_seconds() - cpu0) / (time.perf_counter() - t0) * 100 < below:
            return


async def _bench(quick: bool, home: Path) -> list[dict[str, Any]]:
    keys_n, kills_n, idle_s = (60, 3, 5.0) if quick else (300, 10, 15.0)
    os.environ["GUARD_HOME"] = str(home)  # GUARD_HOME beats the config's state_dir: one home for both sides
    config = _config(home)
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    figures: list[dict[str, Any]] = []
    async with running(config) as daemon, asyncio.TaskGroup() as tg:
        desk = daemon.desk
        assert desk is not None
        feeder = Feeder(daemon, MARKS_PER_SECOND)
        feed_task = tg.create_task(feeder.run())
        await _wait(lambda: all(s in desk.marks for s in SYMBOLS))
        async with ApiClient.from_config(config).connect("bench-operator"):
            order = await _fill(daemon, PENDING)

        command = [sys.executable, "-m", "guard", "tui", "--operator", "console"]
        if os.environ.get("GUARD_BENCH_PROFILE"):  # where the console's time goes: python -m pstats FILE
            command[1:1] = ["-m", "cProfile", "-o", os.environ["GUARD_BENCH_PROFILE"]]
        term = Terminal(command, env, home)
        try:
            live = await asyncio.to_thread(term.wait_for, f"{order[0]} v1".encode(), 0, 30.0)
            if live is None:
                raise AssertionError(f"the console never showed the queue; it wrote: {term.tail()!r}")
            start_s = live - term.spawned
            await _settle(term)  # the first seconds' redraws pass before the steady state is measured

            # Steady state: streaming, nobody typing.
            sent0, cpu0, t0 = feeder.sent, term.cpu_seconds(), time.perf_counter()
            await asyncio.sleep(idle_s)
            idle_cpu = (term.cpu_seconds() - cpu0) / (time.perf_counter() - t0) * 100
            marks_rate = (feeder.sent - sent0) / (time.perf_counter() - t0)

            # Keys: j/k move the cursor; the screen is updated when the card shows the newly selected proposal.
            index, key_ms, missed = 0, [], 0
            cpu0, t0 = term.cpu_seconds(), time.perf_counter()
            for i in range(keys_n):
                key = b"j" if (i // 20) % 2 == 0 else b"k"
                index = max(0, min(len(order) - 1, index + (1 if key == b"j" else -1)))
                since = term.mark()
                sent = term.press(key)
                shown = await asyncio.to_thread(term.wait_for, f"{order[index]} v1".encode(), since, 2.0)
                if shown is None:
                    missed += 1
                else:
                    key_ms.append((shown - sent) * 1000)
                await asyncio.sleep(0.1)  # a quick person's pace
            keys_cpu = (term.cpu_seconds() - cpu0) / (time.perf_counter() - t0) * 100

            marks: dict[str, float] = {}
            if os.environ.get("GUARD_BENCH_DEBUG"):
                _trace(daemon, marks)
            # Kill: K with a full queue, until the banner's HALTED badge (the daemon's echo) is on screen.
            kill_ms, sent_ms = [], []
            for round_ in range(kills_n):
                marks.clear()
                since = term.mark()
                sent = term.press(b"K")
                note = await asyncio.to_thread(term.wait_for, b"KILL sent", since, 5.0)
                halted = await asyncio.to_thread(term.wait_for, HALTED_BADGE, since, 10.0)
                assert halted is not None, "HALTED never reached the screen"
                kill_ms.append((halted - sent) * 1000)
                if os.environ.get("GUARD_BENCH_DEBUG"):
                    phases = {k: round((v - sent) * 1000, 1) for k, v in marks.items()}
                    print("kill", round(kill_ms[-1], 1), phases, file=sys.stderr)
                if note is not None:
                    sent_ms.append((note - sent) * 1000)
                if round_ == kills_n - 1:
                    break
                await _wait(lambda: desk.state.trading_state is TradingState.HALTED and not desk.state.kill_in_progress)
                await desk.rearm("bench-operator", "RE-ARM", "bench round")
                mark = term.mark()
                async with ApiClient.from_config(config).connect("bench-operator"):
                    order = await _fill(daemon, PENDING)
                settled = await asyncio.to_thread(term.wait_for, f"{order[0]} v1".encode(), mark, 30.0)
                assert settled is not None, "the console never showed the refilled queue"
                await _settle(term)
            rss = term.peak_rss_mb()
            alive = term.proc.poll() is None
        finally:
            term.close()
            feed_task.cancel()

    note = (
        f"`guard tui` in a 160×48 pty against an in-process daemon (embedded sim, 10 symbols; marks injected at the "
        f"feed's entry at {marks_rate:.0f}/s); {len(order)} pending; key = j/k, updated = the card shows the newly "
        f"selected proposal ({len(key_ms)} keys, {missed} missed); {len(kill_ms)} kills, each with a full queue"
    )
    figures.append(_figure("kill key -> HALTED on screen", kill_ms, "ms", 100, note))
    figures.append(_figure("kill key -> 'KILL sent' on screen", sent_ms, "ms", 100, "local feedback before the echo"))
    figures.append(_figure("other key (j/k) -> screen updated", key_ms, "ms", 50, ""))
    figures.append(
        {
            "figure": "TUI CPU, streaming + a key every 100 ms",
            "value": round(keys_cpu, 1),
            "unit": "% of one core",
            "target": "<= 35",
            "met": keys_cpu <= 35,
            "note": f"streaming only, nobody typing: {idle_cpu:.1f}%",
        }
    )
    figures.append(_single("TUI CPU, streaming, idle", idle_cpu, "% of one core", 35))
    figures.append(_single("TUI peak RSS", rss, "MB", 120, "VmHWM of the console process"))
    figures.append(
        _single("TUI start (spawn -> live queue on screen)", start_s, "s", 1.5, "includes `guard tui`'s imports")
    )
    figures.append({"figure": "console still running at the end", "value": alive, "met": alive})
    return figures


def _figure(name: str, values: list[float], unit: str, target: float, note: str) -> dict[str, Any]:
    if not values:
        return {"figure": name, "value": None, "unit": unit, "target": f"p99 <= {target}", "met": False, "note": note}
    p99 = _pct(values, 0.99)
    return {
        "figure": name,
        "value": round(statistics.mean(values), 1),
        "unit": unit,
        "p50": round(_pct(values, 0.5), 1),
        "p99": round(p99, 1),
        "target": f"p99 <= {target}",
        "met": p99 <= target,
        "note": note,
    }


def _single(name: str, value: float, unit: str, target: float, note: str = "") -> dict[str, Any]:
    return {
        "figure": name,
        "value": round(value, 2),
        "unit": unit,
        "target": f"<= {target}",
        "met": value <= target,
        "note": note,
    }


def run(quick: bool = False) -> Iterable[dict[str, Any]]:
    configure(level="error", stream=open(os.devnull, "w"))  # the process-wide log sink: kept open
    home = Path(tempfile.mkdtemp(prefix="gtb", dir="/tmp"))  # short: unix socket paths are limited
    try:
        return asyncio.run(_bench(quick, home))
    finally:
        shutil.rmtree(home, ignore_errors=True)
