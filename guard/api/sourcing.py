"""The wire's part for proposal sources: how a source's standing is shown, and the rules of a proposal's size.

Kept beside `guard.api.protocol` (which uses both) so the protocol module stays one step of the data flow.
"""

from __future__ import annotations

from decimal import Decimal

from guard.domain import Value
from guard.errors import DecodeError

SIZES = ("qty", "notional", "equity_fraction")
"""A proposal's size is exactly one of these."""


class ProposalSource(Value, frozen=True):
    """Who sent a proposal, on the proposal's view: a source's name and whether it is paused. Its record is in the
    status (`SourceView`), which changes as proposals settle, where a thousand proposal views need not."""

    name: str
    paused: bool = False
    reason: str = ""
    """Why it is paused, or ""."""


class SourceView(Value, frozen=True):
    """A proposal source as guard grades it: its record beside its claims, and whether it may propose."""

    name: str
    paused: bool
    reason: str
    """Why it is paused (its record below its claims, or a flood), or ""."""
    graded: int
    """Its proposals with a claimed confidence that guard is grading (settled or not)."""
    settled: int
    """Of those, settled at their horizon: its record."""
    hit_rate: float | None
    """How often the settled ones came true."""
    claimed: float | None
    """What it claimed on average for the same proposals."""
    buckets: tuple[tuple[float | None, int], ...] = ()
    """Its record per claimed-confidence bucket of 10 points (0-10 %, ..., 90-100 %): (how often right, how many
    settled)."""

    def at(self, confidence: float) -> tuple[float | None, int]:
        """Its record at a claimed confidence: (how often right, how many settled) in that confidence's bucket."""
        if not self.buckets:
            return None, 0
        return self.buckets[min(max(int(confidence * 10), 0), len(self.buckets) - 1)]


def check_size(
    qty: Decimal | None, notional: Decimal | None, equity_fraction: Decimal | None, confidence: Decimal | None
) -> None:
    """Exactly one size; a fraction of equity and a claimed confidence at most 1. Or DecodeError says which.

    (That each is finite, positive and of a sane size is `protocol.bounded`'s to say.)
    """
    given = [name for name, value in zip(SIZES, (qty, notional, equity_fraction), strict=True) if value is not None]
    if len(given) != 1:
        said = f"got {' and '.join(given)}" if given else "got none"
        raise DecodeError(f"Propose: give exactly one size, qty, notional or equity_fraction ({said})")
    for name, value in (("equity_fraction", equity_fraction), ("confidence", confidence)):
        if value is not None and value > 1:
            raise DecodeError(f"Propose.{name}: a fraction, more than 0 and at most 1, got {str(value)[:40]}")
