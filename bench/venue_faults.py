"""Exactly once on a venue: orders sent through the sandbox broker (real ccxt, the simulated exchange over
loopback) while the venue times out after accepting, holds requests until after (or within) their recvWindow,
answers 5xx before and after accepting, answers "duplicate client order id" for an order it took, fills in part,
and fails the lookups that follow. Every client order id must be created at most once at the venue (duplicates)
and the journal must end with exactly what the venue did (lost: a venue order the journal calls not executed, or
fills that differ; unresolved: still UNKNOWN after the faults clear). See tests/broker/sandbox_support.py.
`python -m bench venue_faults` (or `venue-faults`)."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any


async def _runs(runs: int, workdir: Path) -> tuple[Any, float]:
    from guard.logs import configure
    from tests.broker.sandbox_support import FaultRuns, run_fault_batch, sandbox_desk, simulated_exchange

    configure("critical", "json")  # each ambiguous outcome logs by design; keep the figures readable
    total = FaultRuns()
    started = time.perf_counter()
    async with simulated_exchange() as sim, sandbox_desk(workdir / "venue-faults.db", sim) as desk:
        for first in range(0, runs, 100):
            batch = await run_fault_batch(desk, sim, min(100, runs - first), seed=first, start=first, concurrency=50)
            total.runs += batch.runs
            total.duplicates += batch.duplicates
            total.lost += batch.lost
            total.unresolved += batch.unresolved
            total.unknown_then_resolved += batch.unknown_then_resolved
            total.violations += batch.violations
            for name, n in batch.by_injection.items():
                total.by_injection[name] = total.by_injection.get(name, 0) + n
    return total, time.perf_counter() - started


def run(quick: bool = False) -> Iterable[dict[str, Any]]:
    runs = 100 if quick else 1_000
    with tempfile.TemporaryDirectory() as tmp:
        outcome, seconds = asyncio.run(_runs(runs, Path(tmp)))
    mix = ", ".join(f"{name} {n}" for name, n in sorted(outcome.by_injection.items()))
    yield {
        "figure": "venue fault runs",
        "value": outcome.runs,
        "unit": "runs",
        "target": ">= 1000",
        "met": outcome.runs >= 1_000 if not quick else None,
        "note": f"{seconds:.0f} s; injected: {mix}; {outcome.unknown_then_resolved} stayed UNKNOWN past every "
        "lookup and were resolved afterwards",
    }
    yield {
        "figure": "duplicate orders",
        "value": outcome.duplicates,
        "unit": "orders",
        "target": "0",
        "met": outcome.duplicates == 0,
    }
    yield {"figure": "lost orders", "value": outcome.lost, "unit": "orders", "target": "0", "met": outcome.lost == 0}
    yield {
        "figure": "venue fault violations",
        "value": len(outcome.violations),
        "unit": "violations",
        "target": "0",
        "met": not outcome.violations,
        "note": "; ".join(outcome.violations[:3]) or "none",
    }
