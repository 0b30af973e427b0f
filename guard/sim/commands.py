"""`guard sim`: run the simulated exchange on its own until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import msgspec

from guard import logs
from guard.config import SimSection, load_config
from guard.errors import BadInput
from guard.sim.faults import ALL_SCENARIOS
from guard.sim.server import SimExchange


def run(args: argparse.Namespace) -> int:
    """guard sim [--port N] [--scenario NAME] [--speed X] [--seed N] [--history FILE]."""
    config = load_config(args.config)
    changes = {
        name: value
        for name, value in (
            ("port", args.port), ("scenario", args.scenario), ("speed", args.speed),
            ("seed", args.seed), ("history", args.history),
        )
        if value is not None
    }
    section = msgspec.structs.replace(config.sim, **changes)
    if section.scenario not in ALL_SCENARIOS:
        raise BadInput(f"--scenario {section.scenario!r}: must be one of {', '.join(ALL_SCENARIOS)}")
    if not 0 < section.speed <= 10_000:
        raise BadInput(f"--speed {section.speed}: must be > 0 and <= 10000")
    logs.configure(level=config.log.level, fmt=config.log.format)
    asyncio.run(_serve(section, config.exchange.symbols))
    return 0


async def _serve(section: SimSection, symbols: tuple[str, ...]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with SimExchange(section, symbols) as sim:
        print(f"simulated exchange (Binance USDⓈ-M API) at {sim.url}  streams {sim.ws_url}/ws", flush=True)
        print(f"  symbols: {', '.join(sim.market.symbols)}; scenario {sim.section.scenario}; "
              f"speed x{sim.section.speed:g}; seed {sim.section.seed}", flush=True)
        print(f"  state: {sim.url}/_sim/state   Ctrl-C to stop", file=sys.stderr, flush=True)
        await stop.wait()
