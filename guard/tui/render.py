"""Small text renderers shared by the console's widgets: numbers, bars, sparklines, badges.

Colours carry meaning and the words say it too (ACTIVE/REDUCING/HALTED, ✓/!/✗), so the
console reads the same on a monochrome terminal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

from rich.text import Text

from guard.domain import Proposal, RiskCheck, TradingState, Verdict

STATE_STYLE = {
    TradingState.ACTIVE: "bold black on green",
    TradingState.REDUCING: "bold black on yellow",
    TradingState.HALTED: "bold white on red",
}
STATE_WORDS = {
    TradingState.ACTIVE: "trading: proposals may be approved",
    TradingState.REDUCING: "reducing: only risk-reducing orders pass",
    TradingState.HALTED: "halted: nothing trades until a person re-arms",
}
VERDICT_MARK = {Verdict.PASS: ("✓", "green"), Verdict.WARN: ("!", "yellow"), Verdict.BLOCK: ("✗", "bold red")}
_SPARKS = "▁▂▃▄▅▆▇█"
_EIGHTHS = " ▏▎▍▌▋▊▉█"


def money(value: Decimal | float | None, places: int = 2) -> str:
    """1234.5 -> "1,234.50"; None -> "—"."""
    return "—" if value is None else f"{float(value):,.{places}f}"


def signed(value: Decimal | float | None, places: int = 2) -> str:
    """A PnL: "+12.30", "−4.00" (a real minus sign)."""
    if value is None:
        return "—"
    text = f"{float(value):+,.{places}f}"
    return text.replace("-", "−")


def pnl_style(value: Decimal | float | None) -> str:
    if value is None or value == 0:
        return ""
    return "green" if value > 0 else "red"


def price(value: Decimal | float | None) -> str:
    """A price with as many decimals as its size needs."""
    if value is None:
        return "—"
    v = float(value)
    places = 1 if abs(v) >= 1000 else 2 if abs(v) >= 10 else 4
    return f"{v:,.{places}f}"


def quantity(value: Decimal) -> str:
    """A size without trailing zeros: 0.050 -> "0.05"."""
    text = format(value.normalize(), "f")
    return text


def pct(value: float | None, places: int = 1, sign: bool = False) -> str:
    """A percentage given in percent units (4.6 -> "4.6%")."""
    if value is None or not math.isfinite(value):
        return "—"
    text = f"{value:+.{places}f}%" if sign else f"{value:.{places}f}%"
    return text.replace("-", "−")


def probability(value: float | None) -> str:
    """A probability 0..1 as a percentage; tiny model estimates show as "<0.1%"."""
    if value is None or not math.isfinite(value):
        return "—"
    if 0 < value < 0.001:
        return "<0.1%"
    return f"{value * 100:.1f}%" if value < 0.1 else f"{value * 100:.0f}%"


def bar(fraction: float, width: int) -> str:
    """A horizontal bar of `width` cells filled to `fraction`, in eighths."""
    fraction = min(1.0, max(0.0, fraction if math.isfinite(fraction) else 0.0))
    eighths = round(fraction * width * 8)
    full, rest = divmod(eighths, 8)
    text = "█" * full + (_EIGHTHS[rest] if rest and full < width else "")
    return text.ljust(width, "·" if width else " ")


NO_MODEL = "no model"
"""What stands where a model's figures would: a person's (or a source's) proposal has no calibrated confidence
and no novelty to show."""


def from_model(p: Proposal) -> bool:
    """Whether guard's model proposed `p` (its confidence is calibrated, its novelty measured)."""
    return p.source == "model"


def confidence_bar(confidence: float, width: int = 5) -> Text:
    """A confidence as a bar and a number, coloured by strength."""
    style = "green" if confidence >= 0.7 else "yellow" if confidence >= 0.6 else "red"
    return Text.assemble((bar(confidence, width), style), f" {confidence * 100:3.0f}%")


def sparkline(values: Sequence[float], width: int) -> str:
    """The last `width` values as block characters, scaled to their own range."""
    points = list(values)[-width:]
    if not points:
        return ""
    lo, hi = min(points), max(points)
    span = hi - lo
    if span <= 0:
        return _SPARKS[3] * len(points)
    return "".join(_SPARKS[min(7, int((v - lo) / span * 8))] for v in points)


def seconds(value: float | None) -> str:
    """Time left: "28s", "4m05s"; None -> "—"."""
    if value is None:
        return "—"
    s = math.ceil(value)
    return f"{s}s" if s < 60 else f"{s // 60}m{s % 60:02d}s"


def check_badges(checks: Sequence[RiskCheck]) -> Text:
    """One mark per risk check: ✓ pass, ! warn, ✗ block."""
    text = Text()
    for check in checks:
        mark, style = VERDICT_MARK[check.verdict]
        text.append(mark, style)
    return text


def short_symbol(symbol: str) -> str:
    """ "BTC/USDT:USDT" -> "BTC/USDT" (the settle currency is implied for perpetuals)."""
    return symbol.split(":", 1)[0]


def base(symbol: str) -> str:
    """ "BTC/USDT:USDT" -> "BTC"."""
    return symbol.split("/", 1)[0]
