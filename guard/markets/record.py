"""A market spec with its provenance: where it came from and what in it was guessed."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from guard.domain import MarketKind, MarketSpec


@dataclass(frozen=True, slots=True)
class SpecRecord:
    """One market's spec as guard keeps it beside history: the spec, its settlement currency, its source,
    and one sentence per guess (shown to the person whenever the spec is used)."""

    spec: MarketSpec
    source: str
    """Where the spec came from: "binanceusdm via ccxt 4.5.3, 2026-01-02 03:04 UTC", "guard's built-in spec",
    "guard history import of XRP_USDT_USDT-5m-futures.csv"."""
    settle: str | None = None
    """The currency a linear contract settles in (None for spot)."""
    guesses: tuple[str, ...] = ()
    """What was not known and was guessed, e.g. "tick 0.00001 guessed from the prices' decimals"."""

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    def describe(self) -> str:
        """One line for a person: the symbol, where its spec came from, and its key figures."""
        s = self.spec
        kind = "spot" if s.kind is MarketKind.SPOT else f"linear perpetual settled in {self.settle or s.quote}"
        parts = [
            kind,
            f"tick {_plain(s.tick_size)}",
            f"step {_plain(s.step_size)}",
            f"min qty {_plain(s.min_qty)}",
            f"min notional {_plain(s.min_notional)} {s.quote}",
            f"fees {_pct(s.maker_fee)}/{_pct(s.taker_fee)} maker/taker",
        ]
        if s.kind is MarketKind.LINEAR:
            parts.append(f"max leverage {_plain(s.max_leverage)}, {len(s.tiers)} maintenance tiers")
        if s.contract_size != 1:
            parts.append(f"contract size {_plain(s.contract_size)}")
        return f"{s.symbol}: {', '.join(parts)} ({self.source})"


def _plain(value: Decimal) -> str:
    """A Decimal as a person writes it: 0.00001, not 1E-5."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _pct(rate: Decimal) -> str:
    return f"{float(rate) * 100:g} %"
