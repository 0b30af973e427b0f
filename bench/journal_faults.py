"""The journal failing, over and over: a real desk, paper broker and journal file whose journal runs out of
space (SQLite's max_page_count, so every cycle is the same), then gets it back. Each cycle opens positions, fills
the journal until a write fails, pulls the kill switch while it is failing, frees the space, waits for the
journal to write what it kept, and re-arms. Counts what must never happen: the desk stopping, a kill that did not
flatten, an acknowledged decision missing from the journal, trading resuming without a re-arm."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def run(quick: bool = False) -> Iterable[dict[str, Any]]:
    cycles = 10 if quick else 50
    result = asyncio.run(_cycles(cycles))
    recovery = sorted(result["recovery_ms"])
    yield {
        "figure": "journal fill/free cycles",
        "value": cycles,
        "unit": "cycles",
        "target": ">= 50",
        "met": cycles >= 50 if not quick else None,
        "note": (
            f"{result['acknowledged']} acknowledged decisions; {result['kept']} events kept in memory while failing"
        ),
    }
    for name, key in (
        ("desk stopped by a failed write", "stopped"),
        ("kills that did not flatten while the journal failed", "not_flat"),
        ("acknowledged decisions missing from the journal", "lost"),
        ("cycles where trading resumed without a re-arm", "resumed_alone"),
    ):
        yield {"figure": name, "value": result[key], "unit": "cycles", "target": "0", "met": result[key] == 0}
    yield {
        "figure": "space back -> journal writing again",
        "value": round(recovery[-1], 1),
        "unit": "ms",
        "p50": round(recovery[len(recovery) // 2], 1),
        "p99": round(recovery[min(len(recovery) - 1, int(0.99 * len(recovery)))], 1),
        "note": "the writer retries every 0.5 s, so this is at most about half a second plus the write",
    }


async def _cycles(cycles: int) -> dict[str, Any]:
    from guard.approval.desk import REARM_PHRASE
    from guard.domain import TradingState
    from guard.errors import JournalFailing
    from guard.events import DecisionRecorded
    from guard.journal.chain import read_entries
    from tests.builders import BTC, ETH, make_config, make_desk, request

    config = make_config(risk={"max_orders_per_minute": 10_000, "daily_loss_limit": 1_000_000})
    out: dict[str, Any] = {
        "stopped": 0,
        "not_flat": 0,
        "lost": 0,
        "resumed_alone": 0,
        "acknowledged": 0,
        "kept": 0,
        "recovery_ms": [],
    }
    acknowledged: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.db"
        desk = await make_desk(path, config=config)
        for _ in range(cycles):
            try:
                if desk.state.trading_state is not TradingState.ACTIVE:
                    await desk.rearm("bench", REARM_PHRASE)
                for symbol, qty in ((BTC, "0.05"), (ETH, "1")):
                    proposed = await desk.propose(request(symbol, qty=qty, leverage="2"))
                    if proposed.ok and proposed.proposal is not None:
                        if (await desk.approve(proposed.proposal.id, "bench", version=1)).ok:
                            acknowledged.add(proposed.proposal.id)
                with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                    desk.journal.page_limit = int(conn.execute("PRAGMA page_count").fetchone()[0])
                while desk.journal.failing is None:
                    try:
                        filler = await desk.propose(request(BTC, qty="0.001", leverage="1"))
                        if filler.ok and filler.proposal is not None:
                            await desk.reject(filler.proposal.id, "bench", reason="filler")
                    except JournalFailing:
                        break
                while desk.state.trading_state is not TradingState.HALTED:  # noqa: ASYNC110 - the halt is a hop away
                    await asyncio.sleep(0.001)
                report = await desk.kill("bench", "disk full")
                out["not_flat"] += not report.flat or bool(desk.state.account.positions)
                out["kept"] += desk.journal.kept
                freed = time.perf_counter()
                desk.journal.page_limit = None
                while desk.journal.failing is not None or "writes again" not in desk.state.state_reason:  # noqa: ASYNC110
                    await asyncio.sleep(0.001)
                out["recovery_ms"].append((time.perf_counter() - freed) * 1000)
                out["resumed_alone"] += desk.state.trading_state is not TradingState.HALTED
            except Exception:
                out["stopped"] += 1
                break
        await desk.stop("bench over")
        desk.journal.close()
        decided = {e.event.proposal_id for e in read_entries(path) if isinstance(e.event, DecisionRecorded)}
        out["lost"] = len(acknowledged - decided)
        out["acknowledged"] = len(acknowledged)
    return out
