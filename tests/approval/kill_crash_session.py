"""A session that opens positions with resting stops and take-profits, then pulls the kill switch (or lets the
dead-man switch flatten), in its own process:
`python -m tests.approval.kill_crash_session JOURNAL SEED [kill|deadman]`. It prints `KILLING` just before the kill
and `HALTED` once the halt is durably journaled (what an operator is told); the test SIGKILLs it at a random
moment around the kill and checks that the restarted guard finishes it."""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

from guard.clock import SystemClock
from guard.domain import Side
from guard.logs import configure
from tests.builders import START_PRICES, SYMBOLS, make_config, make_desk, request

CONFIG = make_config(risk={"max_orders_per_minute": 10_000, "daily_loss_limit": 1_000_000})
SIZES = {"BTC/USDT:USDT": "0.01", "ETH/USDT:USDT": "0.3", "SOL/USDT:USDT": "5"}


async def session(path: Path, seed: int, mode: str) -> None:
    rng = random.Random(seed)
    desk = await make_desk(path, SystemClock(), CONFIG, marks=dict(START_PRICES))
    for _ in range(rng.randint(3, 8)):
        symbol = rng.choice(SYMBOLS)
        side = rng.choice(list(Side))
        price = START_PRICES[symbol]
        stop, take_profit = (price * 0.97, price * 1.03) if side is Side.BUY else (price * 1.03, price * 0.97)
        proposed = await desk.propose(
            request(symbol, side, SIZES[symbol], "2", stop=f"{stop:.2f}", take_profit=f"{take_profit:.2f}")
        )
        assert proposed.ok and proposed.proposal is not None, proposed.reason
        approved = await desk.approve(proposed.proposal.id, "crash", version=1)
        assert approved.ok, approved.reason
    if mode == "deadman":
        print("DEADMAN", flush=True)
        await desk.operators_absent(31.0, "flatten")
        print("APPLIED", flush=True)
        await asyncio.sleep(3600)
    halted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    halted.add_done_callback(lambda _: print("HALTED", flush=True))
    print("KILLING", flush=True)
    await desk.kill("crash", "kill crash test", on_halted=halted)
    print("KILLED", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    configure(level="warning", fmt="json")  # logs to stderr; stdout carries only the markers
    asyncio.run(session(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "kill"))
