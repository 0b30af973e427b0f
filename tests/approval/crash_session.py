"""A busy trading session in its own process, for crash tests: `python -m tests.approval.crash_session JOURNAL SEED`.

It proposes, approves, overrides, rejects, moves prices, kills and re-arms as fast as it can, printing
`ACK <command> <proposal id>` only after a command has returned (that is, after it was journaled).
The test SIGKILLs it at a random moment and checks what the journal kept.
"""

from __future__ import annotations

import asyncio
import random
import sys
from decimal import Decimal as D
from pathlib import Path

from guard.approval.desk import REARM_PHRASE
from guard.clock import SystemClock
from guard.domain import MarkPrice, OverrideEdits, Side, TradingState
from guard.logs import configure
from tests.builders import START_PRICES, SYMBOLS, make_config, make_desk, request

CONFIG = make_config(risk={"max_orders_per_minute": 10_000, "daily_loss_limit": 1_000_000})


async def session(path: Path, seed: int) -> None:
    rng = random.Random(seed)
    prices = dict(START_PRICES)
    desk = await make_desk(path, SystemClock(), CONFIG, marks=prices)
    if desk.state.trading_state is not TradingState.ACTIVE:
        await desk.rearm("crash", REARM_PHRASE)
    print("READY", flush=True)
    while True:
        symbol = rng.choice(SYMBOLS)
        prices[symbol] *= 1 + rng.uniform(-0.002, 0.002)
        await desk.on_market(MarkPrice(symbol, desk.clock.now_ms(), round(prices[symbol], 2)))
        size = {"BTC/USDT:USDT": "0.01", "ETH/USDT:USDT": "0.3", "SOL/USDT:USDT": "5"}[symbol]
        proposed = await desk.propose(request(symbol, rng.choice(list(Side)), size, "2"))
        if not proposed.ok or proposed.proposal is None:
            if "HALTED" in proposed.reason:
                await desk.rearm("crash", REARM_PHRASE)
            continue
        pid = proposed.proposal.id
        roll = rng.random()
        if roll < 0.6:
            result = await desk.approve(pid, "crash")
            command = "approve"
        elif roll < 0.8:
            result = await desk.override(pid, "crash", OverrideEdits(qty=D(size) / 2))
            command = "override"
        elif roll < 0.95:
            result = await desk.reject(pid, "crash", reason="test")
            command = "reject"
        else:
            await desk.kill("crash", "crash test")
            print(f"ACK kill {pid}", flush=True)
            continue
        if result.status is not None and result.status.value in ("FILLED", "REJECTED", "FAILED"):
            print(f"ACK {command} {pid}", flush=True)


if __name__ == "__main__":
    configure(level="warning", fmt="json")  # logs to stderr; stdout carries only READY and ACK lines
    asyncio.run(session(Path(sys.argv[1]), int(sys.argv[2])))
