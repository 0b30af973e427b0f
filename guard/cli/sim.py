"""`guard sim`: run the simulated exchange on its own until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys
from pathlib import Path

import msgspec

from guard import logs
from guard.config import SimSection, load_config
from guard.errors import BadInput
from guard.paths import StatePaths

SCENARIOS_HELP = (
    "price: calm, trend, regime-shift (volatility x5 for an hour), flash-crash (-30%% in a minute, "
    "then recovery); faults, played after 30 s and then every 120 s of simulated time: feed-stall, "
    "disconnect-storm, 429-storm, 5xx-burst, malformed, nan-price, out-of-order, duplicate-bars"
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `guard sim`."""
    sim = sub.add_parser("sim", help="run the simulated exchange (Binance USDⓈ-M API) on loopback")
    sim.add_argument("--port", type=int, default=None, help="loopback port (default: config, 0 = any free)")
    sim.add_argument("--scenario", default=None, metavar="NAME", help=SCENARIOS_HELP)
    sim.add_argument("--speed", type=float, default=None, metavar="X", help="simulated seconds per real second")
    sim.add_argument("--seed", type=int, default=None, help="seed of the price process")
    sim.add_argument("--history", default=None, metavar="FILE", help="serve this history file (1m bars)")
    sim.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """guard sim [--port N] [--scenario NAME] [--speed X] [--seed N] [--history FILE]."""
    from guard.sim.faults import ALL_SCENARIOS

    config = load_config(args.config)
    changes = {
        name: value
        for name, value in (
            ("port", args.port),
            ("scenario", args.scenario),
            ("speed", args.speed),
            ("seed", args.seed),
            ("history", args.history),
        )
        if value is not None
    }
    section = msgspec.structs.replace(config.sim, **changes)
    if section.scenario not in ALL_SCENARIOS:
        raise BadInput(f"--scenario {section.scenario!r}: must be one of {', '.join(ALL_SCENARIOS)}")
    if not 0 < section.speed <= 10_000:
        raise BadInput(f"--speed {section.speed:g}: must be > 0 and <= 10000")
    logs.configure(level=config.log.level, fmt=config.log.format)
    paths = StatePaths(config.state_dir)
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.umask(0o077)  # the control token file is the operator's alone
    token = secrets.token_urlsafe(24)
    paths.sim_token.write_text(token + "\n", encoding="utf-8")
    try:
        asyncio.run(_serve(section, config.exchange.symbols, token, paths.sim_token))
    finally:
        paths.sim_token.unlink(missing_ok=True)
    return 0


async def _serve(section: SimSection, symbols: tuple[str, ...], token: str, token_file: Path) -> None:
    from guard.sim.server import SimExchange

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with SimExchange(section, symbols, admin_token=token, repeat_faults=True) as sim:
        print(f"simulated exchange (Binance USDⓈ-M API) at {sim.url}  streams {sim.ws_url}/ws", flush=True)
        print(
            f"  symbols: {', '.join(sim.market.symbols)}; scenario {sim.section.scenario}; "
            f"speed x{sim.section.speed:g}; seed {sim.section.seed}",
            flush=True,
        )
        print(
            f"  control: {sim.url}/_sim/ with the bearer token in {token_file}   Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
