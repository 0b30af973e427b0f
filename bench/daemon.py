"""The daemon under load: a real daemon (feed, model, desk, journal with fsync, API on its unix socket)
with five operator consoles attached over WebSockets, while a simulated exchange in another process
streams 10 symbols at 1,000 trade msgs/s each (10,000/s in all: twice the 5,000/s assumed peak of
Binance USDⓈ-M BTCUSDT, see bench/feed.py). The simulator stands in for a venue across the internet,
so it runs at nice 10 and takes the CPU guard leaves; the rate it delivered is reported. Then,
separately: the daemon's memory, and how long `guard up` takes to put a first proposal in front of
an operator with the shipped config."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from guard.api.client import ApiClient, Session
from guard.api.protocol import (
    Acknowledge,
    AlertRaised,
    Approve,
    Kill,
    PauseModel,
    PositionsChanged,
    ProposalsChanged,
    Propose,
    Rearm,
    Reject,
)
from guard.approval.desk import ACKNOWLEDGMENT_PHRASES
from guard.config import load_config
from guard.domain import AcknowledgmentKind, Side
from guard.logs import configure

SYMBOLS = tuple(f"{b}/USDT:USDT" for b in ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "BNB", "AVAX", "LINK", "DOT"))
CLIENTS = 5
SIM_NICENESS = 10
ROOT = Path(__file__).resolve().parents[1]


def start_daemon(config_path: Path, log_file: IO[bytes]) -> subprocess.Popen[bytes]:
    """A real `guard daemon` on this config, in a process of its own, its JSON log to `log_file` (starting it is
    quick: callers wait on its API)."""
    return subprocess.Popen(
        [sys.executable, "-m", "guard", "--config", str(config_path), "daemon", "--log-format", "json"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _figure(name: str, values: list[float], unit: str, target: str, limit: float, note: str) -> dict[str, Any]:
    p99 = _pct(values, 0.99)
    return {
        "figure": name,
        "value": p99,
        "unit": unit,
        "p50": statistics.median(values) if values else None,
        "p99": p99,
        "target": target,
        "met": p99 <= limit,
        "note": note,
    }


class _Listener:
    """One operator console: reads everything pushed, notes when things arrive."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.alerts: dict[str, float] = {}
        self.proposals: dict[str, float] = {}
        self.flat_at: float | None = None
        self.changed = asyncio.Event()
        self.kinds: dict[str, float] = {}
        self.proposal_latency_ms: dict[str, float] = {}
        """Bar close (the proposal's created_at is stamped as the bar is taken in) -> on this console."""

    async def run(self) -> None:
        async for message in self.session.messages():
            now = time.perf_counter()
            self.changed.set()
            if isinstance(message, AlertRaised):
                self.alerts.setdefault(message.alert.text, now)
                self.kinds[message.alert.kind] = now
            elif isinstance(message, ProposalsChanged):
                for view in message.upserted:
                    p = view.proposal
                    if p.id not in self.proposals and p.source == "model" and p.version == 1:
                        self.proposal_latency_ms[p.id] = time.time() * 1000 - p.created_at
                    self.proposals.setdefault(p.id, now)
            elif isinstance(message, PositionsChanged) and not message.positions:
                self.flat_at = now


async def _loaded(quick: bool) -> list[dict[str, Any]]:
    from bench.feed import TRADES_PER_TICK, _remote_sim  # the load generator the feed benchmark uses

    rate = 1_000.0
    rounds = 10 if quick else 100
    seconds = 20 if quick else 90
    bar_to_queued: dict[str, float] = {}
    queued_to_screen: list[float] = []
    kill_rt: list[float] = []
    flat: list[float] = []
    fanout: list[float] = []
    with tempfile.TemporaryDirectory(prefix="guard-bench-") as home:
        # The simulated exchange stands in for a venue across the internet, whose CPU is not ours; here it
        # shares the two cores, so it runs at a lower priority and the figures report the rate it delivered.
        async with _remote_sim(rate, SYMBOLS, scenario="trend", niceness=SIM_NICENESS) as sim:
            config_path = Path(home) / "config.toml"
            listed = ", ".join(f'"{s}"' for s in SYMBOLS)
            config_path.write_text(
                f'[guard]\nstate_dir = "{home}"\n[exchange]\nsymbols = [{listed}]\n[sim]\nurl = "{sim.url}"\n'
                f"trades_per_tick = {TRADES_PER_TICK}\n[paper]\nstarting_balance = 1000000\n"
                "[risk]\nmin_confidence = 0.4\nmax_orders_per_minute = 10000\nmax_gross_exposure = 100000000\n"
                "daily_loss_limit = 1000000\n"
                '[approval]\nmax_pending = 10000\n[log]\nlevel = "warning"\n'
                # A lower confidence floor than the shipped 0.55, so the model proposes often enough to be timed.
                "[proposals]\nmin_confidence = 0.4\n"
            )
            config = load_config(config_path)
            log_file = (Path(home) / "daemon.log").open("wb")
            daemon = start_daemon(config_path, log_file)
            try:
                from guard.daemonctl import wait_until_up

                await wait_until_up(config)
                client = ApiClient.from_config(config)
                sessions = [await _enter(client.connect(f"op{i}")) for i in range(CLIENTS)]
                listeners = [_Listener(s) for s, _ in sessions]
                async with asyncio.TaskGroup() as tg:
                    tasks = [tg.create_task(listener.run()) for listener in listeners]
                    first = sessions[0][0]
                    await first.send(
                        Acknowledge(
                            first.next_id(),
                            AcknowledgmentKind.MODEL_PROPOSALS,
                            ACKNOWLEDGMENT_PHRASES[AcknowledgmentKind.MODEL_PROPOSALS],
                        )
                    )
                    # Closed bar -> proposal on the consoles: the daemon stamps each bar as it takes it in
                    # (the bar's close time); the console stamps the proposal as it arrives.
                    await asyncio.sleep(seconds)
                    queued_to_screen = list(listeners[0].proposal_latency_ms.values())
                    bar_to_queued = _summary(await client.metrics(), "guard_bar_to_proposal_seconds")
                    await first.send(PauseModel(first.next_id(), "kill rounds"))
                    for view in (await client.snapshot()).proposals:
                        await first.send(Reject(first.next_id(), view.proposal.id, "bench"))
                    sent_before, sent_from = (await asyncio.to_thread(sim.state))["stream"], time.perf_counter()
                    for n in range(rounds):
                        opened = await _open_positions(first, client, per_symbol=1)
                        for listener in listeners:
                            listener.flat_at = None
                        started = time.perf_counter()
                        reply = await first.send(Kill(first.next_id(), f"bench {n}"))
                        kill_rt.append((time.perf_counter() - started) * 1000)
                        assert reply.ok, reply.reason
                        await _until(listeners, lambda: listeners[0].flat_at is not None)
                        flat.append((listeners[0].flat_at - started) * 1000)
                        text = f"HALTED: kill switch: bench {n}"
                        await _until(listeners, lambda text=text: all(text in li.alerts for li in listeners))
                        fanout.append((max(li.alerts[text] for li in listeners) - started) * 1000)
                        await _until(listeners, lambda: "kill" in listeners[0].kinds)
                        listeners[0].kinds.clear()
                        rearmed = await first.send(Rearm(first.next_id(), "RE-ARM"))
                        assert rearmed.ok and opened, rearmed.reason
                    sent_after = (await asyncio.to_thread(sim.state))["stream"]
                    delivered = (sent_after["frames_sent"] - sent_before["frames_sent"]) / (
                        time.perf_counter() - sent_from
                    )
                    health = await client.health()
                    for task in tasks:
                        task.cancel()
                for _, context in sessions:
                    await context.__aexit__(None, None, None)
            finally:
                daemon.terminate()
                await asyncio.to_thread(daemon.wait, 30)
                log_file.close()
            inside = _kills_logged(Path(home) / "daemon.log")
    note = (
        f"daemon (and its feed child), consoles and `guard sim`: four processes on the machine's cores; "
        f"5 consoles attached; feed {len(SYMBOLS)} symbols x "
        f"{rate:,.0f} trade msgs/s asked, {delivered:,.0f} msgs/s sent while the kills ran (the simulator at nice "
        f"{SIM_NICENESS}); {rounds} kills, each with {len(SYMBOLS)} positions open; "
        f"daemon event-loop lag at the end {health.get('loop_lag_ms') if health else '?'} ms"
    )
    flat_inside = [k["flat_ms"] for k in inside if k.get("flat_ms") is not None]
    recorded_inside = [k["recorded_ms"] for k in inside]
    flat_note = (
        f"inside the daemon (its kill_completed log), kill -> HALTED journaled p50 "
        f"{statistics.median(recorded_inside):.1f} / p99 {_pct(recorded_inside, 0.99):.1f} ms, kill -> flat verified "
        f"p50 {statistics.median(flat_inside):.1f} / p99 {_pct(flat_inside, 0.99):.1f} ms; the rest is the way to the "
        "console"
        if flat_inside and recorded_inside
        else "the daemon logged no kill timings"
    )
    return [
        _figure("kill over the API, round trip (5 consoles, feed at 2x peak)", kill_rt, "ms", "p99 <= 20 ms", 20, note),
        _figure("kill -> all positions flat, seen by a console", flat, "ms", "p99 <= 50 ms", 50, flat_note),
        _figure(
            "alert fan-out to 5 operators (kill -> HALTED alert on every console)",
            fanout,
            "ms",
            "p99 <= 1000 ms",
            1000,
            note,
        ),
        _bar_figure(bar_to_queued, queued_to_screen, seconds),
    ]


def _kills_logged(path: Path) -> list[dict[str, Any]]:
    """The daemon's own account of each kill (its JSON log's kill_completed events)."""
    kills = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if '"kill_completed"' in line:
            with contextlib.suppress(json.JSONDecodeError):
                kills.append(json.loads(line))
    return kills


def _summary(metrics: str, name: str) -> dict[str, float]:
    """Quantiles (ms) of a Prometheus summary in the daemon's /metrics."""
    out = {}
    for line in metrics.splitlines():
        if line.startswith(name + '{quantile="'):
            q = line.split('"')[1]
            out[q] = float(line.split()[-1]) * 1000
    return out


def _bar_figure(bar_to_queued: dict[str, float], queued_to_screen: list[float], seconds: float) -> dict[str, Any]:
    """Closed bar -> on screen, as (bar taken in -> queued, measured in the daemon) + (queued -> console)."""
    if not bar_to_queued or not queued_to_screen:
        return {
            "figure": "closed bar -> proposal on the operators' screens (10 symbols)",
            "value": None,
            "unit": "ms",
            "target": "p99 <= 100 ms",
            "met": None,
            "note": f"no model proposal in {seconds} s of the simulated market: nothing to measure",
        }
    p50 = bar_to_queued["0.5"] + statistics.median(queued_to_screen)
    p99 = bar_to_queued["0.99"] + _pct(queued_to_screen, 0.99)
    return {
        "figure": "closed bar -> proposal on the operators' screens (10 symbols)",
        "value": p99,
        "unit": "ms",
        "p50": p50,
        "p99": p99,
        "target": "p99 <= 100 ms",
        "met": p99 <= 100,
        "note": f"{len(queued_to_screen)} model proposals in {seconds} s of a trending simulated market; bar taken in "
        f"-> queued (daemon) p50 {bar_to_queued['0.5']:.1f} / p99 {bar_to_queued['0.99']:.1f} ms, plus queued -> "
        f"console p50 {statistics.median(queued_to_screen):.1f} / p99 {_pct(queued_to_screen, 0.99):.1f} ms",
    }


async def _until(listeners: list[_Listener], condition: Any) -> None:
    async with asyncio.timeout(30):
        while not condition():
            for listener in listeners:
                listener.changed.clear()
            await asyncio.wait(
                [asyncio.ensure_future(listener.changed.wait()) for listener in listeners],
                return_when=asyncio.FIRST_COMPLETED,
            )


async def _enter(context: Any) -> tuple[Session, Any]:
    session = await context.__aenter__()
    return session, context


async def _open_positions(session: Session, client: ApiClient, per_symbol: int) -> int:
    """Open one position per symbol the way an operator would: an operator proposal, approved."""
    snapshot = await client.snapshot()
    marks = {s: prices[-1] for s, prices in snapshot.prices.items() if prices}
    opened = 0
    for symbol, mark in marks.items():
        for _ in range(per_symbol):
            reply = await session.send(
                Propose(session.next_id(), symbol, Side.BUY, Decimal(str(round(1000 / mark, 3))), Decimal(2))
            )
            if reply.ok:
                approved = await session.send(Approve(session.next_id(), reply.data["proposal_id"], 1))
                opened += approved.ok
    return opened


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def _first_proposal(quick: bool) -> list[dict[str, Any]]:
    """`guard up` with the shipped config.toml, as a new user runs it: time to the first proposal on a console."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "GUARD_HOME": home}
        config = load_config(ROOT / "config.toml")
        os.environ["GUARD_HOME"] = home
        started = time.perf_counter()
        up = subprocess.run(  # noqa: ASYNC221 - the bench measures exactly this blocking command
            [sys.executable, "-m", "guard", "--config", str(ROOT / "config.toml"), "up", "--no-tui"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert up.returncode == 0, up.stderr
        up_seconds = time.perf_counter() - started
        try:
            client = ApiClient.from_config(config)
            first_at = None
            async with client.connect("bench") as session:
                await session.send(
                    Acknowledge(
                        session.next_id(),
                        AcknowledgmentKind.MODEL_PROPOSALS,
                        ACKNOWLEDGMENT_PHRASES[AcknowledgmentKind.MODEL_PROPOSALS],
                    )
                )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(120):
                        async for message in session.messages():
                            if isinstance(message, ProposalsChanged) and message.upserted:
                                first_at = time.perf_counter()
                                break
            pid = int((Path(home) / "daemon.pid").read_text())
            rss = _rss_mb(pid)
        finally:
            subprocess.run(  # noqa: ASYNC221
                [sys.executable, "-m", "guard", "--config", str(ROOT / "config.toml"), "down"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                timeout=60,
            )
            os.environ.pop("GUARD_HOME", None)
    to_first = (first_at - started) if first_at is not None else float("inf")
    return [
        {
            "figure": "guard up -> first proposal on screen (shipped config)",
            "value": to_first,
            "unit": "s",
            "target": "<= 10 s",
            "met": to_first <= 10,
            "note": f"daemon up and answering after {up_seconds:.1f} s; then the model acknowledgment, then the "
            "first confident signal on the simulated market",
        },
        {
            "figure": "daemon RSS (model loaded, 3 symbols streaming)",
            "value": rss,
            "unit": "MB",
            "target": "<= 400 MB",
            "met": rss <= 400,
            "note": "VmRSS of the `guard daemon` process",
        },
    ]


def run(quick: bool = False) -> Iterable[dict[str, Any]]:
    configure(level="error")
    yield from asyncio.run(_loaded(quick))
    yield from asyncio.run(_first_proposal(quick))
