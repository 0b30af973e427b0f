"""A proposal priced at a mark: pure functions of a request, its market and a snapshot, with no journal.

Pricing gives a proposal its liquidation price, P(liquidation), distance to liquidation in σ and its
risk checks' verdicts. A decision re-prices when the mark moved past the collar or already passed
the proposal's stop or take-profit, shifting those with the price; an override's edits are priced
the same way, with the edits that add risk named.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from msgspec.structs import replace

from guard.config import RiskSection
from guard.domain import MarketSpec, OrderType, OverrideEdits, Proposal, ProposalRequest, Side
from guard.markets.ticks import beyond_collar
from guard.risk.checks import RiskContext, proposal_liquidation_price, run_checks
from guard.risk.liquidation import liquidation_distance_sigma, p_liquidation

EDITABLE = ("qty", "leverage", "stop", "take_profit", "limit_price")
"""What an override may change."""


def price_proposal(
    request: ProposalRequest | Proposal,
    *,
    pid: str,
    version: int,
    mark: Decimal,
    spec: MarketSpec,
    created_at: int,
    expires_at: int,
    ttl_seconds: float,
    context: RiskContext,
    limits: RiskSection,
) -> Proposal:
    """Price a request (or a proposal's new version) at `mark`: liquidation price, P(liquidation), risk checks.

    Args:
        ttl_seconds: how long it may wait for a decision; P(liquidation) looks that far plus the request's horizon.
        context: the snapshot the risk checks judge it by.
    """
    price = spec.round_price(mark)
    qty = spec.round_qty(request.qty)
    entry = request.limit_price or price
    liquidation = proposal_liquidation_price(spec, request.side, qty, entry, request.leverage)
    horizon = ttl_seconds + request.horizon_seconds
    draft = Proposal(
        id=pid,
        version=version,
        symbol=request.symbol,
        side=request.side,
        qty=qty,
        leverage=request.leverage,
        order_type=request.order_type,
        limit_price=request.limit_price,
        stop=request.stop,
        take_profit=request.take_profit,
        price=price,
        liquidation_price=liquidation,
        p_liquidation=p_liquidation(request.side, entry, liquidation, request.sigma, horizon),
        liquidation_distance_sigma=liquidation_distance_sigma(entry, liquidation, request.sigma, horizon),
        confidence=request.confidence,
        novelty=request.novelty,
        novel=request.novel,
        sigma=request.sigma,
        horizon_seconds=request.horizon_seconds,
        model_id=request.model_id,
        why=request.why,
        source=request.source,
        created_at=created_at,
        expires_at=expires_at,
        checks=(),
    )
    return replace(draft, checks=run_checks(draft, context, limits))


def shifted(p: Proposal, mark: Decimal, spec: MarketSpec) -> Proposal:
    """Move a market proposal's stop and take-profit with the price, keeping their distances."""
    if p.order_type is not OrderType.MARKET:
        return p
    ratio = mark / p.price
    return replace(
        p,
        stop=spec.round_price(p.stop * ratio) if p.stop else None,
        take_profit=spec.round_price(p.take_profit * ratio) if p.take_profit else None,
    )


def trigger_passed(p: Proposal, mark: Decimal) -> str:
    """Which of a market proposal's stop and take-profit the mark has already reached ("" if neither): its
    entry would fill at the mark and the protective order would fire at once."""
    if p.order_type is not OrderType.MARKET:
        return ""
    buying = p.side is Side.BUY
    if p.stop is not None and (mark <= p.stop if buying else mark >= p.stop):
        return f"stop {p.stop}"
    if p.take_profit is not None and (mark >= p.take_profit if buying else mark <= p.take_profit):
        return f"take-profit {p.take_profit}"
    return ""


@dataclass(frozen=True, slots=True)
class Moved:
    """The market moved since a proposal was priced, enough that a person must look at it again."""

    mark: Decimal
    bps: Decimal
    """How far the mark is from the proposal's price, in basis points."""
    passed: str
    """The stop or take-profit the mark already passed ("" when it is the collar that was crossed)."""
    collar_bps: float

    @property
    def why(self) -> str:
        """Why it was re-priced, as journaled."""
        return f"the market passed its {self.passed}" if self.passed else f"moved {self.bps:.0f} bps"

    def refusal(self, p: Proposal, repriced: Proposal) -> str:
        """What the operator who decided on `p` is told once it is re-priced as `repriced`."""
        again = f"re-priced at {repriced.price} as version {repriced.version}; review and approve again"
        if self.passed:
            # Within the collar, but the fill would meet its own stop or take-profit at once.
            return f"the price ({self.mark}) is already past {p.id}'s {self.passed}: {again}"
        return f"the price moved {self.bps:.0f} bps since {p.id} was priced (collar {self.collar_bps:g} bps): {again}"


def moved(p: Proposal, mark: Decimal, collar_bps: float, spec: MarketSpec) -> Moved | None:
    """How the market moved past `p`'s collar or past its stop or take-profit, or None when it did neither.

    The collar judges the mark rounded to the tick, as `p.price` is: rounding alone never trips it
    (`guard.markets.ticks.beyond_collar`).
    """
    passed = trigger_passed(p, mark)
    if beyond_collar(spec, p.price, mark, collar_bps) or passed:
        return Moved(mark, abs(spec.round_price(mark) - p.price) / p.price * 10_000, passed, collar_bps)
    return None


@dataclass(frozen=True, slots=True)
class Edit:
    """An override's edits applied to a proposal, before it is priced again."""

    request: Proposal
    """The proposal with the edits (its price, liquidation and checks still the old ones)."""
    diff: tuple[str, ...]
    """What changed, "name old -> new"."""
    riskier: tuple[str, ...]
    """The changes that add risk (larger, more leveraged, a wider stop): they need a confirmation."""


def apply_edits(p: Proposal, edits: OverrideEdits) -> Edit:
    """The proposal with an override's edits, what changed, and which changes add risk."""
    changes: dict[str, Any] = {}
    diff: list[str] = []
    riskier: list[str] = []
    for name in EDITABLE:
        new = getattr(edits, name)
        old = getattr(p, name)
        if new is None or new == old:
            continue
        changes[name] = new
        diff.append(f"{name} {old} -> {new}")
        if name in ("qty", "leverage") and new > old:
            riskier.append(f"{name} {old} -> {new}")
        if name == "stop" and old is not None and abs(new - p.price) > abs(old - p.price):
            riskier.append(f"wider stop {old} -> {new}")
    if "limit_price" in changes:
        changes["order_type"] = OrderType.LIMIT
    return Edit(replace(p, **changes), tuple(diff), tuple(riskier))
