"""The decision gate: why a proposal may not be queued, approved or decided now, in one wording.

The risk checks (`guard.risk.checks.run_checks`) judge a priced proposal against a snapshot; the gate
adds what they cannot know — a journal that cannot record, a proposal no longer PENDING or past its
expiry, no price yet — and says first what stops everything on a symbol (trading HALTED, its feed
unhealthy, no price): a decision never re-prices on a halted desk or a bad feed. The same answers
serve queueing (`queue_refusal`), the operators' views (`approvable`) and decisions (`rule`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

import msgspec

from guard.approval.market import Market
from guard.approval.pricing import Moved, moved
from guard.approval.records import ProposalRecord
from guard.approval.settings import DeskSettings
from guard.approval.state import GuardState
from guard.clock import Clock
from guard.domain import (
    BLOCK,
    HALTED,
    PENDING,
    REDUCING,
    AcknowledgmentKind,
    MarketSpec,
    Proposal,
    ProposalRequest,
    RiskCheck,
    Side,
)
from guard.journal.store import Journal
from guard.risk.checks import RiskContext, increases_risk, run_checks


class Ruling(msgspec.Struct, frozen=True, gc=False):
    """The gate's answer to a decision on a proposal that is PENDING and current. (A struct, not a dataclass: one
    is made at every decision, and a frozen dataclass's `__init__` sets each field through `object.__setattr__`.)"""

    refusal: str = ""
    """Why the order may not go ("" when it may)."""
    moved: Moved | None = None
    """Set when the market moved past the collar or a trigger: re-price it for a second look (and refuse)."""
    trips_throttle: bool = False
    """This order is the one beyond the throttle's limit: the throttle latches."""


_MAY_GO = Ruling()
"""Nothing stops the order (most decisions): one immutable answer for them all."""

_MODEL_PROPOSALS, _LEVERAGE = AcknowledgmentKind.MODEL_PROPOSALS, AcknowledgmentKind.LEVERAGE
"""Read at every proposal: as module globals, not through 3.11's slow `EnumType.__getattr__` hook."""


SCAN_PENDING_AT_MOST = 8
"""Up to this many pending proposals, the duplicate check's are picked out directly, not through an index."""


def pending_like(pending: Sequence[ProposalRecord], symbol: str, side: Side) -> tuple[Proposal, ...]:
    """The pending proposals for `symbol` and `side`, in queue order."""
    return tuple([r.proposal for r in pending if r.proposal.symbol == symbol and r.proposal.side is side])


def pending_index(pending: Sequence[ProposalRecord]) -> dict[tuple[str, Side], tuple[Proposal, ...]]:
    """`pending_like` for every symbol and side at once."""
    index: dict[tuple[str, Side], list[Proposal]] = {}
    for r in pending:
        index.setdefault((r.proposal.symbol, r.proposal.side), []).append(r.proposal)
    return {k: tuple(v) for k, v in index.items()}


class Gate:
    """Says why not, from the risk checks' verdicts and what the checks cannot know; changes nothing."""

    def __init__(
        self,
        journal: Journal,
        state: GuardState,
        market: Market,
        specs: Mapping[str, MarketSpec],
        settings: DeskSettings,
        clock: Clock,
    ) -> None:
        self._journal = journal
        self._state = state
        self._market = market
        self._specs = specs
        self._settings = settings
        self._clock = clock
        self.operator_present = True
        """False while no operator is attached: nothing new is proposed, so nothing can execute."""
        self._pending_index: tuple[int, dict[tuple[str, Side], tuple[Proposal, ...]]] = (-1, {})

    # --- what the checks cannot know -----------------------------------------------------

    def journal_refusal(self) -> str:
        """Why no command that needs a durable record can run now ("" while the journal writes)."""
        error = self._journal.failing
        if error is None:
            return ""
        return f"the journal is failing ({error}): nothing can be recorded, so only the kill switch works"

    def standing(self, symbol: str) -> str:
        """What stops everything on `symbol` now: trading HALTED, its feed unhealthy, or no price for it yet."""
        state = self._state
        if state.trading_state is HALTED:
            return f"trading is HALTED ({state.state_reason}): re-arm first"
        feed = self._market.unhealthy(symbol)
        if feed is not None:
            return f"market data for {symbol} is not healthy: {feed.reason}"
        if symbol not in self._market.marks:
            return f"no market price for {symbol} yet"
        return ""

    def record_refusal(self, record: ProposalRecord, version: int | None = None) -> str:
        """Why this proposal cannot be decided on: not PENDING, or not the version the operator decided on."""
        p = record.proposal
        if record.status is not PENDING:
            return f"{p.id} is {record.status.value}, not PENDING"
        if version is not None and version != p.version:
            return f"you decided on version {version}, but {p.id} is now version {p.version}: review it again"
        return ""

    def expiry_refusal(self, p: Proposal) -> str:
        """Why not when `p` is past its expiry (no answer in time means no), else ""."""
        return f"{p.id} expired" if p.expires_at <= self._clock.now_ms() else ""

    # --- the three moments ---------------------------------------------------------------

    def queue_refusal(self, r: ProposalRequest, *, replacing: bool = False) -> str:
        """Why a proposal may not be queued at all ("" when it may; one the checks block is still queued, shown
        blocked). `replacing`: it takes the place of a pending version (a full queue does not stop it)."""
        state = self._state
        settings = self._settings
        if why := self.journal_refusal() or self.standing(r.symbol):
            return why
        if not self.operator_present:
            return "no operator is attached: nobody could approve it"
        if r.source == "model":
            if state.model_paused:
                return f"the model is paused: {state.model_pause_reason}"
            if not self.model_acknowledged():
                return "model proposals need a typed risk acknowledgment on record for this config and model"
            if r.novel and settings.novelty_policy == "suppress":
                return "novel — the model is guessing (suppressed by model.novelty_policy)"
        if not replacing and len(state.pending()) >= settings.approval.max_pending:
            return f"the queue is full ({settings.approval.max_pending} pending)"
        if state.trading_state is REDUCING and increases_risk(r.side, r.qty, state.account.position(r.symbol)):
            return "trading is REDUCING: only orders that reduce a position pass"
        spec = self._specs[r.symbol]
        if spec.round_qty(r.qty) < spec.min_qty:
            return f"quantity {r.qty} is below the market minimum {spec.min_qty}"
        return ""

    def approvable(self, record: ProposalRecord) -> str:
        """Why an operator could not approve this proposal now ("" if they could).

        A price past the collar is not a reason: approving re-prices it for a second look.
        """
        p = record.proposal
        return (
            self.record_refusal(record)
            or self.expiry_refusal(p)
            or self.standing(p.symbol)
            or self.blocked(self.checks(p))
        )

    def rule(self, p: Proposal, confirm_novel: bool) -> Ruling:
        """Everything that must hold at the moment of a decision on `p` (PENDING, current, not expired)."""
        if why := self.standing(p.symbol):
            return Ruling(why)
        move = moved(p, self._market.marks[p.symbol], self._settings.approval.collar_bps, self._specs[p.symbol])
        if move is not None:
            return Ruling(moved=move)
        if p.novel and self._settings.novelty_policy == "confirm" and not confirm_novel:
            return Ruling("novel — the model is guessing: approving needs the novelty confirmation")
        checks = self.checks(p)
        refusal = self.blocked(checks)
        # Only a refused order can be the one beyond the throttle's limit: most pass, with nothing to look for.
        trips = (
            bool(refusal)
            and not self._state.throttle_latched
            and any(c.name == "throttle" and c.verdict is BLOCK for c in checks)
        )
        return Ruling(refusal, trips_throttle=trips) if refusal else _MAY_GO

    @staticmethod
    def blocked(checks: Sequence[RiskCheck]) -> str:
        """The risk checks' blocks, in one line ("" when none blocks)."""
        blocked = [f"{c.name}: {c.reason}" for c in checks if c.verdict is BLOCK]
        return "blocked by risk checks: " + "; ".join(blocked) if blocked else ""

    def needs_two(self, p: Proposal) -> bool:
        """Whether four-eyes applies: two different operators must approve."""
        ops = self._settings.operators
        return (ops.four_eyes_notional > 0 and p.notional >= ops.four_eyes_notional) or (
            ops.four_eyes_leverage > 0 and p.leverage >= Decimal(str(ops.four_eyes_leverage))
        )

    # --- what the checks look at ---------------------------------------------------------

    def checks(self, p: Proposal) -> tuple[RiskCheck, ...]:
        """The risk checks' verdicts on `p` now."""
        return run_checks(p, self.context(p.symbol, p.side), self._state.limits)

    def context(self, symbol: str, side: Side) -> RiskContext:
        """The snapshot the risk checks judge a proposal for `symbol` and `side` by."""
        state = self._state
        return RiskContext(
            trading_state=state.trading_state,
            positions=state.account.positions,
            marks=self._market.marks,
            pending=self._pending_like(symbol, side),
            leverage_acknowledged=self.leverage_acknowledged(),
            throttle_latched=state.throttle_latched,
            orders_last_minute=state.orders_last_minute(self._clock.now_ms()),
            daily_pnl=self._market.daily_pnl(),
            feed=self._market.feed_health.get(symbol),
            spec=self._specs[symbol],
        )

    def _pending_like(self, symbol: str, side: Side) -> tuple[Proposal, ...]:
        """Pending proposals for the same symbol and side (what the duplicate check needs), indexed once
        per state change so checking a thousand pending proposals stays linear. A short queue (the usual one:
        each proposal is judged right after an event) is read directly instead: cheaper than building an index
        that the next event makes stale."""
        version = self._state.events_applied
        if self._pending_index[0] != version:
            pending = self._state.pending()
            if len(pending) <= SCAN_PENDING_AT_MOST:
                return pending_like(pending, symbol, side)
            self._pending_index = (version, pending_index(pending))
        return self._pending_index[1].get((symbol, side), ())

    def model_acknowledged(self) -> bool:
        """A model-proposals acknowledgment is on record for this config and this model."""
        ack = self._state.acknowledgments.get(_MODEL_PROPOSALS)
        settings = self._settings
        return ack is not None and ack.config_hash == settings.config_hash and ack.model_hash == settings.model_hash

    def leverage_acknowledged(self) -> bool:
        """A leverage acknowledgment is on record for this config."""
        ack = self._state.acknowledgments.get(_LEVERAGE)
        return ack is not None and ack.config_hash == self._settings.config_hash
