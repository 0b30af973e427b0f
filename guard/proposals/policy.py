"""The sizing policy: a Signal becomes a proposal request — or nothing, with a reason.

Side: the signal's. Size: margin = equity × `equity_fraction` × a confidence scale, times a
leverage between `min_leverage` and `max_leverage` that grows with the same scale; the
notional is then capped by the risk limits the policy is given and the market's own limits
(a policy that sized above the risk limits would only make proposals the risk checks block).
Stop and take-profit sit on the signal's barriers (entry × e^(∓k·σ·√H)); prices and
quantities are rounded with the market's tick and step sizes.

The confidence scale is 0.5 at `min_confidence` and 1 at `full_size_confidence`: half size
for a marginal call, full size for a strong one, never more.

No proposal: below `min_confidence`, no side, a novel signal when the novelty policy is
"suppress", inside a symbol's cooldown, too small to trade after rounding, or a stop or take-profit within
two ticks of the entry (compared on the tick grid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

import msgspec
import structlog

from guard.config import ModelSection, ProposalsSection
from guard.domain import BUY, HARD_LEVERAGE_CAP, MARKET_ORDER, ONE, MarketSpec, ProposalRequest, Signal
from guard.markets.ticks import barrier_refusal

log = structlog.get_logger(__name__)

_LEVERAGE_STEP = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The limits the policy must size within (from the risk section)."""

    max_order_notional: Decimal
    max_leverage: Decimal
    """The conservative leverage limit; the policy never proposes above it."""
    max_position_notional: Decimal | None = None


class PolicyOutcome(msgspec.Struct, frozen=True, gc=False):
    """A request, or the reason there is none. (A struct: one is made for every signal the policy weighs.)"""

    request: ProposalRequest | None
    reason: str


class ProposalPolicy:
    """Turns Signals into ProposalRequests.

    Keeps one piece of state: the last proposal time per symbol, for the cooldown (measured
    in the signals' own bar times, so replay behaves like live).

    Args:
        proposals: the proposals section.
        model: the model section (novelty policy).
        limits: risk limits no proposal may exceed.
    """

    def __init__(self, proposals: ProposalsSection, model: ModelSection, limits: RiskLimits) -> None:
        self._config = proposals
        self._model = model
        self._limits = limits
        self._last_proposed: dict[str, int] = {}
        # The config's floats as Decimals, once (each conversion is the same on every signal).
        self._fraction = Decimal(str(proposals.equity_fraction))
        self._low_leverage = Decimal(str(proposals.min_leverage))
        self._high_leverage = Decimal(str(proposals.max_leverage))
        self._leverage_span = self._high_leverage - self._low_leverage
        self._leverage_cap = min(limits.max_leverage, HARD_LEVERAGE_CAP)
        self._caps = [limits.max_order_notional]
        if limits.max_position_notional is not None:
            self._caps.append(limits.max_position_notional)

    def propose(self, signal: Signal, equity: Decimal, spec: MarketSpec, price: Decimal) -> ProposalRequest | None:
        """The proposal for a signal, or None (see `decide` for the reason)."""
        return self.decide(signal, equity, spec, price).request

    def decide(self, signal: Signal, equity: Decimal, spec: MarketSpec, price: Decimal) -> PolicyOutcome:
        """The proposal for a signal at the current price, or why there is none."""
        outcome = self._decide(signal, equity, spec, price)
        if outcome.request is not None:
            self._last_proposed[signal.symbol] = signal.timestamp
        else:
            log.debug("proposals.none", symbol=signal.symbol, reason=outcome.reason)
        return outcome

    def cooling_until(self, symbol: str, bar_seconds: float) -> int:
        """The first signal time (ms) at which `symbol` may be proposed again (0: it may be now).

        Replay skips the bars before it: whatever the model says there, the policy proposes nothing.
        """
        last = self._last_proposed.get(symbol)
        if last is None:
            return 0
        return last + round(self._config.cooldown_bars * bar_seconds * 1000)

    def reset_cooldown(self, symbol: str | None = None) -> None:
        """Forget cooldowns (after a restart or for one symbol)."""
        if symbol is None:
            self._last_proposed.clear()
        else:
            self._last_proposed.pop(symbol, None)

    def _decide(self, signal: Signal, equity: Decimal, spec: MarketSpec, price: Decimal) -> PolicyOutcome:
        c = self._config
        if signal.side is None:
            return PolicyOutcome(None, "the model sees no trade")
        if signal.confidence < c.min_confidence:
            return PolicyOutcome(
                None, f"confidence {signal.confidence:.0%} below proposals.min_confidence {c.min_confidence:.0%}"
            )
        if signal.novel and self._model.novelty_policy == "suppress":
            return PolicyOutcome(None, f"novel input (novelty {signal.novelty:.2f}): the model is guessing")
        if signal.timestamp < self.cooling_until(signal.symbol, signal.bar_seconds):
            return PolicyOutcome(None, f"cooldown: proposed on {signal.symbol} less than {c.cooldown_bars} bars ago")
        if equity <= 0 or price <= 0:
            return PolicyOutcome(None, "no equity or no price")
        if not math.isfinite(signal.barrier) or signal.barrier <= 0:
            return PolicyOutcome(None, "signal has no barrier distance")

        scale = self._scale(signal.confidence)
        leverage = self._leverage(scale, spec)
        margin = equity * self._fraction * Decimal(str(round(scale, 6)))
        notional = min(margin * leverage, *self._caps)
        qty = spec.round_qty(notional / (price * spec.contract_size))
        if qty < spec.min_qty or qty <= 0:
            return PolicyOutcome(None, f"size {qty} below the market minimum {spec.min_qty}")
        if qty * price * spec.contract_size < spec.min_notional:
            return PolicyOutcome(None, f"notional below the market minimum {spec.min_notional}")

        up = Decimal(str(math.exp(signal.barrier)))
        down = Decimal(str(math.exp(-signal.barrier)))
        if signal.side is BUY:
            stop, take = spec.round_price(price * down), spec.round_price(price * up)
        else:
            stop, take = spec.round_price(price * up), spec.round_price(price * down)
        # Compared on the tick grid: the entry rounded as the desk will price it.
        if too_close := barrier_refusal(spec, price, stop, take):
            return PolicyOutcome(None, too_close)
        pct = f"{signal.confidence:.0%}"
        novel = "; NOVEL — the model is guessing" if signal.novel else ""
        why = f"{signal.side._value_} {pct}" + (f" — {signal.why}" if signal.why else "") + novel
        return PolicyOutcome(
            ProposalRequest(
                symbol=signal.symbol,
                side=signal.side,
                qty=qty,
                leverage=leverage,
                stop=stop,
                take_profit=take,
                order_type=MARKET_ORDER,
                confidence=signal.confidence,
                novelty=signal.novelty,
                novel=signal.novel,
                sigma=signal.sigma / math.sqrt(signal.bar_seconds) if signal.bar_seconds > 0 else 0.0,
                horizon_seconds=signal.horizon_seconds,
                model_id=signal.model_id,
                why=why,
                source="model",
            ),
            "proposed",
        )

    def _scale(self, confidence: float) -> float:
        """0.5 at min_confidence rising to 1 at full_size_confidence (and capped there)."""
        c = self._config
        span = c.full_size_confidence - c.min_confidence
        if span <= 0:
            return 1.0
        return 0.5 + 0.5 * min(max((confidence - c.min_confidence) / span, 0.0), 1.0)

    def _leverage(self, scale: float, spec: MarketSpec) -> Decimal:
        # scale runs 0.5..1; map it to min..max leverage
        raw = self._low_leverage + self._leverage_span * Decimal(str(round((scale - 0.5) * 2, 6)))
        cap = min(self._leverage_cap, spec.max_leverage)
        return min(max(raw, ONE), cap).quantize(_LEVERAGE_STEP, rounding=ROUND_DOWN)
