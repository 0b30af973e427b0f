"""A hypothesis state machine that drives a real desk (journal file, paper broker) through random sessions.

Used by tests/approval/test_invariants.py (>= 1,000 examples) and `python -m bench invariants` (>= 10,000).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from decimal import Decimal as D
from pathlib import Path

from hypothesis import event, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, multiple, rule

from guard.approval.desk import ACKNOWLEDGMENT_PHRASES, REARM_PHRASE, ApprovalDesk
from guard.approval.state import GuardState
from guard.clock import TestClock
from guard.domain import (
    AcknowledgmentKind,
    MarkPrice,
    OverrideEdits,
    ProposalStatus,
    Side,
    TradingState,
)
from guard.events import DecisionRecorded
from guard.journal.audit import JournalAuditor
from guard.journal.chain import read_entries, verify
from tests.builders import START_PRICES, SYMBOLS, make_config, make_desk, request

CONFIG = make_config(
    risk={"max_orders_per_minute": 6, "daily_loss_limit": 3000, "max_order_notional": 40_000},
    operators={"four_eyes_notional": 30_000},
)
COLLAR_BPS = D(str(CONFIG.approval.collar_bps))
QTY = {SYMBOLS[0]: ("0.01", "0.05", "0.2"), SYMBOLS[1]: ("0.2", "1", "4"), SYMBOLS[2]: ("2", "10", "50")}


class GuardMachine(RuleBasedStateMachine):
    proposals = Bundle("proposals")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="guard-machine-"))
        self.path = self.dir / "journal.db"
        self.loop = asyncio.new_event_loop()
        self.clock = TestClock()
        self.prices = dict(START_PRICES)
        self.desk: ApprovalDesk = self.run(self._open())
        self.auditor = JournalAuditor()
        self.replayed = GuardState(self.desk.specs)

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    async def _open(self) -> ApprovalDesk:
        return await make_desk(self.path, self.clock, CONFIG, threaded=False, synchronous="normal", marks=self.prices)

    def teardown(self) -> None:
        self.desk.journal.close()
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- rules -----------------------------------------------------------------------

    @initialize(leverage_ack=st.booleans())
    def start(self, leverage_ack: bool) -> None:
        if leverage_ack:
            self.acknowledge_leverage()

    @rule(
        symbol=st.sampled_from(SYMBOLS),
        side=st.sampled_from(Side),
        size=st.integers(0, 2),
        leverage=st.sampled_from(["1", "3", "10", "20"]),
        stop_pct=st.sampled_from([None, 3, 12]),
    )
    def propose_and_approve(self, symbol: str, side: Side, size: int, leverage: str, stop_pct: int | None) -> None:
        """The everyday path: a proposal and its approval straight away."""
        pid = self.propose(symbol, side, size, leverage, stop_pct, novel=False)
        if isinstance(pid, str):
            self.approve(pid, stale=False, confirm_novel=False, operator="alice")

    @rule(
        target=proposals,
        symbol=st.sampled_from(SYMBOLS),
        side=st.sampled_from(Side),
        size=st.integers(0, 2),
        leverage=st.sampled_from(["1", "2", "3", "5", "10", "20"]),
        stop_pct=st.sampled_from([None, 1, 3, 12]),
        novel=st.booleans(),
    )
    def propose(self, symbol: str, side: Side, size: int, leverage: str, stop_pct: int | None, novel: bool):  # type: ignore[no-untyped-def]
        price = self.prices[symbol]
        stop = None
        if stop_pct is not None:
            stop = str(round(price * (1 - side.sign * stop_pct / 100), 2))
        result = self.run(
            self.desk.propose(
                request(
                    symbol, side, QTY[symbol][size], leverage, stop=stop, novel=novel, novelty=0.99 if novel else 0.1
                )
            )
        )
        return result.proposal.id if result.ok and result.proposal else multiple()

    @rule(pid=proposals, stale=st.booleans(), confirm_novel=st.booleans(), operator=st.sampled_from(["alice", "bob"]))
    def approve(self, pid: str, stale: bool, confirm_novel: bool, operator: str) -> None:
        record = self.desk.state.proposals[pid]
        version = record.proposal.version - 1 if stale and record.proposal.version > 1 else record.proposal.version
        before = self.desk.journal.last_seq
        self.run(self.desk.approve(pid, operator, version=version, confirm_novel=confirm_novel))
        self._check_decisions_since(before)

    @rule(
        pid=proposals,
        qty_factor=st.sampled_from(["0.5", "1", "2"]),
        leverage=st.sampled_from([None, "1", "4", "20"]),
        confirm=st.booleans(),
    )
    def override(self, pid: str, qty_factor: str, leverage: str | None, confirm: bool) -> None:
        record = self.desk.state.proposals[pid]
        qty = record.proposal.qty * D(qty_factor)
        edits = OverrideEdits(
            qty=qty if qty != record.proposal.qty else None, leverage=D(leverage) if leverage else None
        )
        if edits == OverrideEdits():
            return
        before = self.desk.journal.last_seq
        self.run(self.desk.override(pid, "carol", edits, confirm_risk_increase=confirm, confirm_novel=True))
        self._check_decisions_since(before)

    @rule(pid=consumes(proposals))
    def reject(self, pid: str) -> None:
        self.run(self.desk.reject(pid, "dave", reason="no"))

    @rule(
        symbol=st.sampled_from(SYMBOLS),
        pct=st.one_of(st.floats(min_value=-3, max_value=3), st.sampled_from([-15.0, -8.0, 8.0, 15.0])),
    )
    def move_price(self, symbol: str, pct: float) -> None:
        self.prices[symbol] = round(self.prices[symbol] * (1 + pct / 100), 2)
        self.run(self.desk.on_market(MarkPrice(symbol, self.clock.now_ms(), self.prices[symbol], funding_rate=0.0003)))

    @rule(seconds=st.sampled_from([1, 10, 31, 600, 8 * 3600]), sweep=st.booleans())
    def advance_time(self, seconds: int, sweep: bool) -> None:
        self.clock.advance(seconds)
        if sweep:  # without a sweep, only the decision-time check stands between an expired proposal and an order
            self.run(self.desk.expire_due())
        for symbol in SYMBOLS:
            self.run(
                self.desk.on_market(MarkPrice(symbol, self.clock.now_ms(), self.prices[symbol], funding_rate=0.0003))
            )

    @rule(pull=st.integers(0, 3))
    def kill(self, pull: int) -> None:
        if pull:  # a kill ends most of what a session can do: pull it a quarter of the times it is drawn
            return
        report = self.run(self.desk.kill("alice", "machine"))
        # Invariant 4: HALTED, nothing pending, nothing resting, flat by a fresh read.
        state = self.desk.state
        assert state.trading_state is TradingState.HALTED
        assert not any(
            r.status in (ProposalStatus.PENDING, ProposalStatus.APPROVED, ProposalStatus.OVERRIDDEN)
            for r in state.proposals.values()
        )
        assert report.flat and state.account.positions == {}
        assert self.run(self.desk.broker.positions()) == []
        assert self.run(self.desk.broker.open_orders()) == [] and state.open_orders() == []

    @rule(pid=proposals)
    def approve_racing_kill(self, pid: str) -> None:
        """A kill lands while an approval waits for its journal commit: the order must not go out."""

        async def race() -> None:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.desk.approve(pid, "alice", confirm_novel=True))
                tg.create_task(self.desk.kill("bob", "race"))

        self.run(race())
        assert self.desk.state.trading_state is TradingState.HALTED
        assert self.run(self.desk.broker.positions()) == []

    @rule()
    def rearm(self) -> None:
        self.run(self.desk.rearm("alice", REARM_PHRASE))

    @rule()
    def acknowledge_leverage(self) -> None:
        self.run(
            self.desk.acknowledge(
                "alice", AcknowledgmentKind.LEVERAGE, ACKNOWLEDGMENT_PHRASES[AcknowledgmentKind.LEVERAGE]
            )
        )

    @rule()
    def reenable_throttle(self) -> None:
        self.run(self.desk.reenable_throttle("alice", "reviewed"))

    @rule(symbol=st.sampled_from(SYMBOLS))
    def close_position(self, symbol: str) -> None:
        self.run(self.desk.close_position(symbol, "alice"))

    @rule(clean=st.booleans())
    def restart(self, clean: bool) -> None:
        if clean:
            self.run(self.desk.stop("machine restart"))
        before = self.desk.state.snapshot()
        self.desk.journal.close()
        self.desk = self.run(self._open())
        after = self.desk.state
        # Invariant 9: the books survive; an unclean exit comes back HALTED; nothing pending survives.
        assert after.account.snapshot()["positions"] == before["account"]["positions"]
        assert after.account.snapshot()["total"] == before["account"]["total"]
        if not clean:
            assert after.trading_state is TradingState.HALTED
        assert after.pending() == []
        assert verify(self.path).ok

    # --- invariants ------------------------------------------------------------------

    def _check_decisions_since(self, seq: int) -> None:
        """Invariant 3 at the moment of decision: within the TTL and within the collar of the live mark."""
        for entry in read_entries(self.path, after_seq=seq):
            e = entry.event
            if isinstance(e, DecisionRecorded) and e.executes is not None:
                mark = D(str(self.prices[e.shown.symbol]))
                assert e.at < e.shown.expires_at
                assert abs(mark - e.executes.price) / e.executes.price * 10_000 <= COLLAR_BPS

    @invariant()
    def journal_obeys_invariants_and_rebuilds_state(self) -> None:
        """Invariants 1, 2, 3, 4, 8 over every new journal event; invariant 9: the ledger balances, the venue
        agrees with the journal, and a fold of the journal from the start equals the state in memory."""
        new = [e.event for e in read_entries(self.path, after_seq=self.auditor.seen)]
        self.auditor.feed(new)
        for e in new:
            self.replayed.apply(e)
        state = self.desk.state
        state.account.check()
        assert state.account.snapshot() == self.desk.broker.account.snapshot()
        assert self.replayed.snapshot() == state.snapshot()
        for e in new:
            event(type(e).__name__)
