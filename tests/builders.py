"""Builders for tests: real components (journal file, paper broker, desk) wired like the daemon does."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from guard.approval.desk import ApprovalDesk, DeskSettings
from guard.broker.paper import PaperBroker
from guard.clock import Clock, TestClock
from guard.config import Config, config_from_dict
from guard.domain import MarkPrice, OrderType, ProposalRequest, Side
from guard.journal.store import Journal
from guard.markets import default_spec

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
SOL = "SOL/USDT:USDT"
SYMBOLS = (BTC, ETH, SOL)
START_PRICES = {BTC: 100_000.0, ETH: 4_000.0, SOL: 200.0}


def make_config(**sections: dict[str, Any]) -> Config:
    """A config as if read from a file with these sections."""
    return config_from_dict(sections)


def specs_for(symbols: tuple[str, ...] = SYMBOLS) -> dict:
    return {s: default_spec(s) for s in symbols}


async def make_desk(
    journal_path: Path,
    clock: Clock | None = None,
    config: Config | None = None,
    *,
    threaded: bool = True,
    synchronous: str = "full",
    marks: dict[str, float] | None = None,
    symbols: tuple[str, ...] = SYMBOLS,
    model_hash: str = "",
) -> ApprovalDesk:
    """A started desk on a real journal file and a paper broker, with opening marks fed in."""
    config = config or Config()
    clock = clock or TestClock()
    specs = specs_for(symbols)
    journal = Journal(journal_path, synchronous=synchronous, threaded=threaded)
    broker = PaperBroker(specs, config.paper, clock)
    desk = ApprovalDesk(journal, broker, specs, DeskSettings.from_config(config, model_hash), clock)
    await desk.start()
    for symbol, price in (marks if marks is not None else {s: START_PRICES[s] for s in symbols}).items():
        await set_mark(desk, symbol, price)
    return desk


async def set_mark(desk: ApprovalDesk, symbol: str, price: float) -> None:
    await desk.on_market(MarkPrice(symbol, desk.clock.now_ms(), price))


def request(
    symbol: str = BTC,
    side: Side = Side.BUY,
    qty: str = "0.05",
    leverage: str = "3",
    *,
    stop: str | None = None,
    take_profit: str | None = None,
    limit_price: str | None = None,
    confidence: float = 0.7,
    source: str = "operator",
    **extra: Any,
) -> ProposalRequest:
    return ProposalRequest(
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        leverage=Decimal(leverage),
        stop=Decimal(stop) if stop else None,
        take_profit=Decimal(take_profit) if take_profit else None,
        order_type=OrderType.LIMIT if limit_price else OrderType.MARKET,
        limit_price=Decimal(limit_price) if limit_price else None,
        confidence=confidence,
        sigma=extra.pop("sigma", 0.0002),
        source=source,
        **extra,
    )


def close(desk: ApprovalDesk) -> None:
    desk.journal.close()


def daemon_config(**sections: dict[str, Any]) -> Config:
    """A daemon config for tests: the embedded sim at 60x (a bar a second), no model unless asked."""
    base: dict[str, dict[str, Any]] = {
        "model": {"enabled": False},
        "sim": {"speed": 60.0},
        "feed": {"stale_after_seconds": 30.0},
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return config_from_dict(base)
