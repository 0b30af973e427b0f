"""The replay engine: history through features, model, proposals, risk, approval, paper broker and journal.

Every decision is the live daemon's own code: `ProposalPolicy` sizes, `ApprovalDesk` prices,
checks, records and executes, `PaperBroker` fills, liquidates and funds, `Journal` records,
`LiveTracker` scores the model against its card (and pauses it, on the record, as live).
What replay does differently is *when* it calls them:

* Features and model outputs are computed for the whole history at once
  (`ModelRunner.replay`); Signals are built only at bars where the model names a side at or
  above `proposals.min_confidence`, outside the policy's cooldown (elsewhere it proposes nothing).
* Market events go to the desk only when they could change something. Most bars carry no
  proposal and touch no position: for those, the lean path proves with float arithmetic (and
  a margin) that no liquidation, stop, take-profit, funding payment or daily-loss latch can
  happen, and skips them; the broker's quote and the desk's marks are fast-forwarded to the
  exact values the skipped events would have left (`PaperBroker.fast_forward`). Where the
  proof fails, the group of events goes through `desk.on_market` one by one (of a lone symbol's
  bar, only the marks that can do something: `guard.replay.marks`). `lean=False` sends every
  event through `desk.on_market`; both journals are identical (tested).

Per bar, with `intrabar` (the default), the mark visits the bar's open, the extreme nearer the
open, the other extreme and its close (`guard.broker.paper_market.bar_path`), and then the closed
bar itself arrives: stops, take-profits and liquidations see the wicks, in the order the price
reaches them (the paper broker's price travels within a bar; only the open may gap).

The scripted operator decides on each proposal right after it is queued, at the bar's close.
It re-arms trading at the start of the next UTC day after the daily loss limit latched
REDUCING (a person would; without it one bad day would end every replay).
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

import msgspec
import structlog

from guard.approval.desk import ACKNOWLEDGMENT_PHRASES, REARM_PHRASE, ApprovalDesk, DeskSettings
from guard.approval.state import DAY_MS
from guard.broker.paper import PaperBroker
from guard.clock import TestClock
from guard.config import Config
from guard.domain import (
    ACTIVE,
    PENDING,
    REDUCING,
    AcknowledgmentKind,
    MarketSpec,
    MarkPrice,
    Signal,
)
from guard.errors import BadInput
from guard.model.artifact import LoadedModel
from guard.model.tracker import LiveTracker
from guard.proposals.policy import ProposalPolicy, RiskLimits
from guard.replay.history import SymbolHistory
from guard.replay.inline import ReplayJournal, YoungCollections, drive
from guard.replay.lean import Exposure, ExposureReader, Segment, equity_curve, first_work
from guard.replay.marks import bar_marks, work_marks
from guard.replay.options import ReplayOptions, replay_config
from guard.replay.prepared import ReplaySymbol, outlook, prepare
from guard.replay.result import ReplayResult, ReplayStats
from guard.replay.tally import Tally
from guard.timeframes import timeframe_ms

__all__ = ["ReplayEngine", "ReplayOptions", "replay_config"]

log = structlog.get_logger(__name__)


_INTRABAR_MS = (20_000, 40_000)
"""When, within a 1-minute bar, the mark is at the bar's first and second extreme (its open at 0)."""


class ReplayEngine:
    """Runs one replay. Build, then `await run()` once."""

    def __init__(
        self,
        config: Config,
        model: LoadedModel,
        histories: Sequence[SymbolHistory],
        options: ReplayOptions,
        journal_path: Path,
        specs: Mapping[str, MarketSpec] | None = None,
    ) -> None:
        """
        Args:
            specs: market specifications per symbol (tick, step, tiers); by default guard's built-in
                ones (`guard.markets.default_spec`). Pass a venue's to replay exactly as it would size.
        """
        if not histories:
            raise BadInput("nothing to replay: no bars")
        timeframes = {h.timeframe for h in histories}
        if timeframes != {model.timeframe}:
            raise BadInput(
                f"the history has {', '.join(sorted(timeframes))} bars; the model {model.model_id} reads "
                f"{model.timeframe} bars"
            )
        if options.leverage is not None and not (1 <= options.leverage <= 20):
            raise BadInput(f"--leverage {options.leverage}: must be between 1 and the hard cap of 20")
        self.config = replay_config(config, options.leverage)
        self.model = model
        self.options = options
        self.journal_path = journal_path
        self.timeframe = model.timeframe
        self._tf_ms = timeframe_ms(self.timeframe)
        self._histories = list(histories)
        self._specs = dict(specs or {})
        self.stats = ReplayStats()
        self._track_groups: list[int] = []
        """Heap of groups where the tracker must see a bar (lean path)."""
        self._reducing_day: int | None = None
        self._refreshed_at = -1
        """The journal's last sequence number when `_refresh` last read the desk."""
        self._x: Exposure
        self._synced = -1
        """The group up to whose events every symbol's quote and mark are (`_sync_all`, `_market`)."""
        self._exposed_at = -1
        """The journal's last sequence number when the exposure `_x` was read."""
        self._next_candidate_at = (-1, -1, -1)
        """(proposals made, from group, next candidate group) as `_next_candidate` last found it: the answer
        for every group from the one asked about up to the candidate, until the next proposal."""

    # --- precomputation -------------------------------------------------------------

    def _prepare(self) -> None:
        self.grid, self._symbols = prepare(
            self.config, self.model, self._histories, self._specs, self._tf_ms, self.options.intrabar
        )
        self._index = {s.history.symbol: s.j for s in self._symbols}

    # --- running --------------------------------------------------------------------

    async def run(self) -> ReplayResult:
        """Replay the whole history; return the figures. The journal is left at `journal_path`.

        Runs to the end without yielding to the event loop (the desk's calls are driven inline,
        see `guard.replay.inline`): call it from a command or a worker, not from a busy daemon loop.
        """
        started = time.perf_counter()
        self._prepare()
        config = self.config
        first_ms = int(self.grid.group_open[0])
        self.clock = TestClock(first_ms)
        specs = {s.history.symbol: s.spec for s in self._symbols}
        self.tally = Tally(self.stats, Decimal(str(config.risk.max_leverage)))
        journal = ReplayJournal(self.journal_path, self.tally)
        self.journal = journal
        try:
            self.broker = PaperBroker(specs, config.paper, self.clock)
            settings = DeskSettings.from_config(config, self.model.model_hash)
            self.desk = ApprovalDesk(journal, self.broker, specs, settings, self.clock, self.broker.account.bookings)
            self._start()
            self._exposures = ExposureReader(self.broker, self._index, self.grid)
            self.policy = ProposalPolicy(
                config.proposals,
                config.model,
                RiskLimits(
                    config.risk.max_order_notional,
                    Decimal(str(config.risk.max_leverage)),
                    config.risk.max_position_notional,
                ),
            )
            self.tracker = LiveTracker.for_model(
                self.model.model_id,
                self.model.metrics,
                shortfall=config.model.live_shortfall,
                false_pause_rate=config.model.live_false_pause_rate,
                window=1_000_000_000,
            )
            self._segments: list[Segment] = []
            self._refresh(0)
            self._loop()
            self.clock.set(max(self.clock.now_ms(), int(self.grid.group_open[-1]) + self._tf_ms))
            self._sync_all(len(self.grid.group_open) - 1)
            drive(self.desk.stop("replay finished"))
            result = self._result()  # while the journal's writer process writes its last rows
        except BaseException:
            journal.close_after_stop()  # what stopped the replay is what is raised
            raise
        journal.close()
        return dataclasses.replace(result, seconds=time.perf_counter() - started)

    def _start(self) -> None:
        desk = self.desk
        drive(desk.start())
        op = self.options.operator.name
        drive(
            desk.acknowledge(
                op, AcknowledgmentKind.MODEL_PROPOSALS, ACKNOWLEDGMENT_PHRASES[AcknowledgmentKind.MODEL_PROPOSALS]
            )
        )
        leverage = self.options.leverage
        if leverage is not None and leverage > 3:
            phrase = ACKNOWLEDGMENT_PHRASES[AcknowledgmentKind.LEVERAGE]
            drive(desk.acknowledge(op, AcknowledgmentKind.LEVERAGE, phrase))

    def _loop(self) -> None:
        n = len(self.grid)
        lean = self.options.lean
        g = 0
        with YoungCollections.running() as collector:
            while g < n:
                market = True  # not lean: every group's events are worked
                if lean:
                    g, market = self._next_interesting(g)
                    if g >= n:
                        return
                self._group(g, market=market)
                collector.step()
                g += 1

    def _group(self, g: int, *, market: bool) -> None:
        """One bar close: re-arm, market events, tracker, expiry, proposals and decisions.

        `market`: whether the group's market events need working (the lean path's proof, or every group when not
        lean), as judged before a re-arm here.
        """
        desk = self.desk
        close_ms = int(self.grid.group_open[g]) + self._tf_ms
        acted = False
        if self._rearm_due(g):
            self.clock.set(max(self.clock.now_ms(), int(self.grid.group_open[g])))
            drive(
                desk.rearm(
                    self.options.operator.name, REARM_PHRASE, "scripted: a new UTC day after the daily loss limit"
                )
            )
            self._refresh(g)  # ACTIVE again: the daily loss proof must know it
            if self.options.lean:
                market = first_work(self.grid, self._x, g, g + 1) is not None
        if market:
            self._sync_all(g - 1)
            self._market(g)
            self.stats.groups_worked += 1
            self._refresh(g)
        self.clock.set(max(self.clock.now_ms(), close_ms))
        if self._feed_tracker(g):
            decision = self.tracker.decision()
            if decision.pause and not desk.state.model_paused:
                drive(desk.pause_model("guard", decision.reason))
                if self.options.resume_paused:
                    reason = "scripted: resumed at once (leverage table)"
                    drive(desk.resume_model(self.options.operator.name, reason))
                    self.tracker.reset()  # as the daemon does on ModelResumed
                acted = True
        if desk.state.pending():
            if drive(desk.expire_due()):
                acted = True
        if self._candidates_at(g) and not desk.state.model_paused:
            self._propose(g)
            acted = True
        if acted:
            self._refresh(g)

    def _market(self, g: int) -> None:
        """Send the group's market events through the desk, in time order across symbols."""
        desk, clock = self.desk, self.clock
        open_ms = int(self.grid.group_open[g])
        present = [(s, int(self.grid.row[g, s.j])) for s in self._symbols if self.grid.row[g, s.j] >= 0]
        if self.options.intrabar:
            paths = [(s, bar_marks(s.history, i)) for s, i in present]
            times = [open_ms + offset for offset in (0, *_INTRABAR_MS, self._tf_ms - 1)]
            if self.options.lean and len(paths) == 1:  # only the marks that can do something (see .marks)
                s, path = paths[0]
                x = self._exposure_now()
                closes = self.grid.closes[g].tolist()
                self._x = work_marks(desk, self.broker, clock, self.journal, self._exposure, x, s, path, times, closes)
            else:
                for phase, at in enumerate(times):
                    clock.set(max(clock.now_ms(), at))
                    for s, path in paths:
                        drive(desk.on_market(MarkPrice(s.history.symbol, at, path[phase])))
        clock.set(max(clock.now_ms(), open_ms + self._tf_ms))
        for s, i in present:
            drive(desk.on_market(s.history.bar(i)))
        self._synced = g  # the others were as of g - 1, which is where g leaves them

    def _feed_tracker(self, g: int) -> bool:
        """Give the tracker the bars it needs; True when it settled any proposal."""
        settled = False
        for s in self._symbols:
            i = int(self.grid.row[g, s.j])
            if i < 0:
                continue
            if self.options.lean:
                if i not in s.track:
                    continue
                s.track.discard(i)
            h, open_ms = s.history, int(s.history.open_times[i])
            if self.tracker.on_closed_bar(
                h.symbol, open_ms, open_ms + self._tf_ms, float(h.highs[i]), float(h.lows[i])
            ):
                settled = True
        return settled

    def _propose(self, g: int) -> None:
        """The pipeline's batch at this close: signals -> policy -> desk, then the operator decides."""
        desk = self.desk
        self._sync_all(g)
        equity = desk.state.account.equity(desk.marks)
        queued = []
        bar_seconds = self.model.bar_seconds
        for s in self._symbols:
            i = int(self.grid.row[g, s.j])
            if i < 0 or not s.candidate[i]:
                continue
            if int(s.history.open_times[i]) + self._tf_ms < self.policy.cooling_until(s.history.symbol, bar_seconds):
                continue
            signal = s.signals.signal(i, explain_side=self.options.explain)
            price = desk.marks.get(s.history.symbol) or Decimal(str(signal.price))
            outcome = self.policy.decide(signal, equity, s.spec, price)
            if outcome.request is None:
                continue
            request = outcome.request if self.options.stops else msgspec.structs.replace(outcome.request, stop=None)
            result = drive(desk.propose(request))
            if result.ok and result.proposal is not None:
                self.tracker.record(signal, result.proposal.id)
                self._schedule_score(s, i, signal)
                queued.append(result.proposal.id)
        operator = self.options.operator
        for pid in queued:
            decided: set[int] = set()  # a version re-priced under a decision is decided once more, as a person would
            while (record := desk.state.proposals[pid]).status is PENDING and len(decided) < 2:
                if record.proposal.version in decided:
                    break
                decided.add(record.proposal.version)
                decision = operator.decide(record.proposal)
                if decision.approve:
                    drive(
                        desk.approve(
                            pid,
                            operator.name,
                            version=record.proposal.version,
                            reason=decision.reason,
                            confirm_novel=decision.confirm_novel,
                        )
                    )
                else:
                    drive(desk.reject(pid, operator.name, reason=decision.reason))

    def _schedule_score(self, s: ReplaySymbol, i: int, signal: Signal) -> None:
        """Find the bar that will settle this proposal (the tracker's own rule) so the lean path feeds it."""
        h = s.history
        k = h.settling_bar(i, signal.timestamp, signal.price, signal.barrier, signal.horizon_seconds)
        if k is not None:
            s.track.add(k)
            heapq.heappush(self._track_groups, int(self.grid.groups[s.j][k]))

    # --- the lean path --------------------------------------------------------------

    def _refresh(self, g: int) -> None:
        """Re-read what the lean path's proofs and the counters depend on, after anything happened.

        Everything read here (positions, resting orders, the trading state, today's PnL, the limits) changes
        only with a journaled event: when none was recorded since the last look, it is as it was.
        """
        seq = self.journal.last_seq
        if seq == self._refreshed_at:
            return
        self._refreshed_at = seq
        account = self.broker.account
        x = self._exposure_now()
        self.tally.held(account.positions.values())
        self._total = float(account.total)
        self._segments.append((g, self._total, x.positions))
        self._reducing_day = self._daily_day_of_reducing() if self.desk.state.trading_state is REDUCING else None

    def _exposure_now(self) -> Exposure:
        """The exposure as last read (mid-bar, say) when nothing was journaled since, else read anew."""
        return self._x if self._exposed_at == self.journal.last_seq else self._exposure()

    def _exposure(self) -> Exposure:
        """Read what the lean path's proofs depend on, as the desk and the venue stand now."""
        state = self.desk.state
        self._exposed_at = self.journal.last_seq
        self._x = self._exposures.read(
            self.broker.account.positions,
            active=state.trading_state is ACTIVE,
            daily_day=state.daily.day,
            daily_realized=state.daily.realized,
            limit=self.desk.limits().daily_loss_limit,
        )
        return self._x

    def _daily_day_of_reducing(self) -> int | None:
        reason = self.desk.state.state_reason
        if not self.options.rearm_daily or not reason.startswith("daily loss limit"):
            return None
        at = self.tally.reducing_at if self.tally.reducing_at is not None else self.clock.now_ms()
        return at // DAY_MS

    def _rearm_due(self, g: int) -> bool:
        return self._reducing_day is not None and int(self.grid.open_day[g]) > self._reducing_day

    def _candidates_at(self, g: int) -> bool:
        return self._next_candidate(g) == g

    def _next_candidate(self, g: int) -> int:
        """The first group at or after g with a bar where the model names a side the policy may propose on
        (outside its cooldown: there it proposes nothing, whatever the model says); len(grid) when none."""
        made = self.stats.proposals + self.stats.refused  # the cooldown moves only when a proposal is made
        known_made, since, known = self._next_candidate_at
        if known_made == made and since <= g <= known:
            return known  # no candidate in [since, known): none in [g, known) either
        bar_seconds = self.model.bar_seconds
        stop = len(self.grid)
        for s in self._symbols:
            k = max(
                bisect_left(s.candidate_groups, g),
                bisect_left(s.candidate_times, self.policy.cooling_until(s.history.symbol, bar_seconds)),
            )
            if k < len(s.candidate_groups):
                stop = min(stop, s.candidate_groups[k])
        self._next_candidate_at = (made, g, stop)
        return stop

    def _next_interesting(self, g: int) -> tuple[int, bool]:
        """The first group at or after g where something can happen, and whether its market events need working
        (one proof over the quiet groups and that one)."""
        stop = self._next_candidate(g)
        heap = self._track_groups
        while heap and heap[0] < g:
            heapq.heappop(heap)
        if heap:
            stop = min(stop, heap[0])
        pending = self.desk.state.pending()
        if pending:
            due = min(r.proposal.expires_at for r in pending) - self._tf_ms
            stop = min(stop, int(self.grid.group_open.searchsorted(due, side="left")))
        if self._reducing_day is not None:
            stop = min(stop, int(self.grid.open_day.searchsorted(self._reducing_day, side="right")))
        hit = first_work(self.grid, self._x, g, min(stop + 1, len(self.grid)))
        return (hit, True) if hit is not None else (stop, False)

    def _sync_all(self, g: int) -> None:
        """Fast-forward every symbol's quote and mark to where the events up to group g left them."""
        if g < 0 or g == self._synced:
            return
        self._synced = g
        for s in self._symbols:
            i = int(self.grid.ff[g, s.j])
            if i < 0:
                continue
            h = s.history
            close = float(h.closes[i])
            if self.options.intrabar:
                last_ms = int(h.open_times[i]) + self._tf_ms - 1
                self.desk.fast_forward_mark(MarkPrice(h.symbol, last_ms, close))
            else:
                last_ms = int(h.open_times[i])
                self.desk.fast_forward_mark(h.bar(i))
            self.broker.fast_forward(h.symbol, Decimal(str(close)), close, s.variance[i], last_ms)

    # --- the result -----------------------------------------------------------------

    def _result(self) -> ReplayResult:
        """The figures, the journal not yet closed (`seconds` is set once it is)."""
        equity = equity_curve(self.grid, self._segments, self._total)
        closes = self.grid.closes
        account = self.broker.account
        marks = self.desk.marks
        report = self.tracker.report()
        return ReplayResult(
            symbols=tuple(s.history.symbol for s in self._symbols),
            timeframe=self.timeframe,
            bars=sum(len(s.history) for s in self._symbols),
            first_ms=int(self.grid.group_open[0]),
            last_ms=int(self.grid.group_open[-1]) + self._tf_ms,
            times=self.grid.group_open + self._tf_ms,
            equity=equity,
            closes=closes,
            starting_balance=self.config.paper.starting_balance,
            final_equity=account.equity(marks),
            realized_pnl=account.realized_pnl,
            fees=account.fees,
            funding=account.funding,
            liquidation_losses=account.liquidation_losses,
            open_positions=len(account.positions),
            stats=self.stats,
            tracker=report,
            by_leverage=self.tally.by_leverage(self.desk.state.proposals.values()),
            operator=self.options.operator.policy.value,
            leverage=str(self.options.leverage) if self.options.leverage is not None else "policy",
            model_id=self.model.model_id,
            journal=self.journal_path,
            seconds=0.0,
            violations=tuple(self.tally.violations),
            outlook=outlook(self.config, self.model, self._symbols),
        )
