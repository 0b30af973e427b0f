"""The core guard's latencies on a real journal file (synchronous=FULL, an fsync per durable commit) and the
paper broker, with the system clock: the kill switch and the approval path; and the cost of encoding and
decoding each event of that session's journal (msgspec; the hand-written codec before it took ~51 µs to encode
and ~64 µs to decode a 1.15 KB ProposalQueued)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from guard.approval.decisions import entry_request
from guard.approval.desk import ACKNOWLEDGMENT_PHRASES, REARM_PHRASE, ApprovalDesk, DeskSettings
from guard.broker.paper import PaperBroker
from guard.clock import SystemClock
from guard.config import config_from_dict
from guard.domain import AcknowledgmentKind, MarketKind, MarketSpec, MarkPrice, OrderType, ProposalRequest, Side
from guard.journal.chain import decode_event, encode_event
from guard.journal.store import Journal
from guard.logs import configure
from guard.markets import builtin_spec, builtin_tiers

BASES = ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "BNB", "AVAX", "LINK", "DOT")
SYMBOLS = tuple(f"{b}/USDT:USDT" for b in BASES)
PRICE = 100.0
IDLE_BEFORE_S = 0.01
"""A second, smaller approval run sleeps this long before each approval, as a daemon between decisions does."""
CONFIG = config_from_dict(
    {
        "exchange": {"symbols": list(SYMBOLS)},
        "paper": {"starting_balance": 10_000_000},
        "risk": {
            "max_orders_per_minute": 10_000,
            "max_order_notional": 1_000_000,
            "max_position_notional": 10_000_000,
            "max_gross_exposure": 100_000_000,
            "daily_loss_limit": 10_000_000,
        },
        "approval": {"max_pending": 100_000},
    }
)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _desk(path: Path) -> ApprovalDesk:
    clock = SystemClock()
    specs = {s: builtin_spec(s) or _made_up_spec(s) for s in SYMBOLS}
    desk = ApprovalDesk(
        Journal(path, synchronous="full"),
        PaperBroker(specs, CONFIG.paper, clock),
        specs,
        DeskSettings.from_config(CONFIG),
        clock,
    )
    await desk.start()
    for s in SYMBOLS:
        await desk.on_market(MarkPrice(s, clock.now_ms(), PRICE))
    return desk


def _request(symbol: str, stop: bool = False) -> ProposalRequest:
    return ProposalRequest(
        symbol=symbol,
        side=Side.BUY,
        qty=Decimal(10),
        leverage=Decimal(2),
        stop=Decimal(90) if stop else None,
        take_profit=Decimal(110) if stop else None,
        order_type=OrderType.MARKET,
        confidence=0.7,
        source="operator",  # a person's proposal: the desk's path without a source's grading and pace
    )


async def _approve_latency(desk: ApprovalDesk, n: int, idle_before: float = 0.0) -> list[float]:
    """Approvals back to back; with `idle_before`, the process sleeps that long before each one."""
    out = []
    for i in range(n):
        proposed = await desk.propose(_request(SYMBOLS[i % len(SYMBOLS)]))
        assert proposed.proposal is not None
        if idle_before:
            await asyncio.sleep(idle_before)
        started = time.perf_counter()
        result = await desk.approve(proposed.proposal.id, "bench")
        out.append((time.perf_counter() - started) * 1000)
        assert result.ok, result.reason
    return out


async def _kill_round(desk: ApprovalDesk, entries: int, pending: int) -> tuple[float, float, float]:
    for i in range(entries):
        proposed = await desk.propose(_request(SYMBOLS[i % len(SYMBOLS)], stop=True))
        assert proposed.proposal is not None
        assert (await desk.approve(proposed.proposal.id, "bench")).ok
    for i in range(pending):
        await desk.propose(_request(SYMBOLS[i % len(SYMBOLS)]))
    probe = entry_request(desk.state.journal_id, desk.state.pending()[0].proposal)
    started = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(desk.kill("bench", "bench"))
        await asyncio.sleep(0)  # kill() runs up to its first await, by which point HALTED is set
        refused = desk.execution.gate(probe)  # what every order meets right before a broker
        halted_ms = (time.perf_counter() - started) * 1000
        assert "HALTED" in refused
    report = task.result()
    flat_ms = (time.perf_counter() - started) * 1000
    assert report.flat, report.problems
    await desk.rearm("bench", REARM_PHRASE)
    return halted_ms, report.recorded_ms, flat_ms


CODEC_ROUNDS = 20
"""Each event of the session is encoded and decoded this many times (per-event times, not a batch average)."""


def _codec_figures(path: Path, rounds: int) -> list[dict[str, Any]]:
    """Encode and decode every event of the session's journal, one at a time, as the journal does."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT seq, type, payload FROM events ORDER BY seq").fetchall()
    events = [decode_event(*row) for row in rows]
    encode_us: list[float] = []
    decode_us: list[float] = []
    queued_encode: list[float] = []
    queued_decode: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for event, row in zip(events, rows, strict=True):
            started = clock()
            encode_event(event)
            encoded = clock()
            decode_event(*row)
            decoded = clock()
            encode_us.append((encoded - started) / 1000)
            decode_us.append((decoded - encoded) / 1000)
            if row[1] == "ProposalQueued":
                queued_encode.append(encode_us[-1])
                queued_decode.append(decode_us[-1])
    queued_bytes = statistics.mean(len(r[2]) for r in rows if r[1] == "ProposalQueued")
    note = (
        f"{len(rows)} events of this session ({len({r[1] for r in rows})} types) x {rounds}; "
        f"a ProposalQueued ({queued_bytes / 1000:.2f} KB): mean {statistics.mean(queued_encode):.1f} µs to encode, "
        f"{statistics.mean(queued_decode):.1f} µs to decode"
    )
    return [
        {
            "figure": "journal: encode one event",
            "value": statistics.mean(encode_us),
            "unit": "µs",
            "p50": statistics.median(encode_us),
            "p99": _pct(encode_us, 0.99),
            "note": note,
        },
        {
            "figure": "journal: decode one event (from its row)",
            "value": statistics.mean(decode_us),
            "unit": "µs",
            "p50": statistics.median(decode_us),
            "p99": _pct(decode_us, 0.99),
            "note": "as `guard journal verify` and a restart read it: the payload into the class its row names",
        },
    ]


async def _run(quick: bool) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        desk = await _desk(Path(tmp) / "journal.db")
        await desk.acknowledge(
            "bench", AcknowledgmentKind.LEVERAGE, ACKNOWLEDGMENT_PHRASES[AcknowledgmentKind.LEVERAGE]
        )
        approve = await _approve_latency(desk, 100 if quick else 1000)
        after_idle = await _approve_latency(desk, 50 if quick else 200, idle_before=IDLE_BEFORE_S)
        await desk.kill("bench", "reset")
        await desk.rearm("bench", REARM_PHRASE)
        halted, recorded, flat = [], [], []
        for _ in range(5 if quick else 50):
            h, r, f = await _kill_round(desk, entries=50, pending=10)
            halted.append(h)
            recorded.append(r)
            flat.append(f)
        desk.journal.close()
        codec_figures = _codec_figures(Path(tmp) / "journal.db", 2 if quick else CODEC_ROUNDS)
    return [
        {
            "figure": "approve -> paper fill durably journaled (fsync)",
            "value": _pct(approve, 0.99),
            "unit": "ms",
            "p50": statistics.median(approve),
            "p99": _pct(approve, 0.99),
            "target": "p99 <= 2 ms",
            "met": _pct(approve, 0.99) <= 2,
            "note": f"{len(approve)} approvals back to back; each commits decision+intent (fsync) and the fill "
            f"(fsync). After {IDLE_BEFORE_S * 1000:.0f} ms asleep before each ({len(after_idle)} more): p50 "
            f"{statistics.median(after_idle):.3f} ms, p99 {_pct(after_idle, 0.99):.3f} ms (both threads wake "
            f"from idle). Load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: every fsync waits on a "
            "disk other work shares",
        },
        {
            "figure": "kill -> HALTED and a new submission refused",
            "value": _pct(halted, 0.99),
            "unit": "ms",
            "p50": statistics.median(halted),
            "p99": _pct(halted, 0.99),
            "target": "p99 <= 5 ms",
            "met": _pct(halted, 0.99) <= 5,
            "note": "time until the execution gate refuses every new order (HALTED in memory, before kill() "
            "first awaits); until the halt is durably journaled: "
            f"p50 {statistics.median(recorded):.3f} ms, p99 {_pct(recorded, 0.99):.3f} ms",
        },
        {
            "figure": "kill -> 50 filled entries across 10 symbols flat and verified",
            "value": _pct(flat, 0.99),
            "unit": "ms",
            "p50": statistics.median(flat),
            "p99": _pct(flat, 0.99),
            "target": "p99 <= 50 ms",
            "met": _pct(flat, 0.99) <= 50,
            "note": f"{len(flat)} kills; each cancels 100 resting stops/take-profits, flattens the 10 net "
            "positions (one-way mode nets the 50 entries per symbol), re-reads positions, journals all",
        },
        *codec_figures,
    ]


def run(quick: bool = False) -> Iterable[dict[str, Any]]:
    configure(level="error")
    return asyncio.run(_run(quick))


def _made_up_spec(symbol: str) -> MarketSpec:
    """A spec for the symbols guard has no built-in one for: the figures guard's old catch-all default gave, so
    the benchmark's numbers stay comparable (the bench only times the desk; the tick does not matter to it)."""
    base, quote = symbol.split(":")[0].split("/")
    return MarketSpec(
        symbol=symbol,
        base=base,
        quote=quote,
        kind=MarketKind.LINEAR,
        tick_size=Decimal("0.0001"),
        step_size=Decimal("0.001"),
        min_qty=Decimal("0.001"),
        min_notional=Decimal(5),
        maker_fee=Decimal("0.0002"),
        taker_fee=Decimal("0.0005"),
        max_leverage=Decimal(125),
        tiers=builtin_tiers(symbol),
    )
