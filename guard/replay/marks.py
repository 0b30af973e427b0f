"""Replay's lean path inside a worked bar: of its intrabar marks, only those that can do something go to the desk.

A bar the lean proof could not show idle (`guard.replay.lean.first_work`) is worked; yet most of its four marks
(open, the nearer extreme, the other, close) still change nothing: the one that reaches a stop does, the others
move the mark and nothing else. For a group that holds one symbol's bar, each mark is judged with the lean path's
own float proof (the exposure's band and daily loss margin), against the exposure as it stands when the mark
comes (read again after a mark that changed anything):

* A quiet mark neither liquidates nor reaches an order, on its way (it travels from the mark before it) or where
  it lands, and cannot bring today's loss to the limit. Funding falling due within the bar, or a symbol without
  a price yet, sends every mark, as before.
* A mark that can do something goes through `desk.on_market`, as before. The venue must reach it from the mark
  before it (its path visits the levels in between, in order), so that one, quiet, is taken by the venue first:
  `PaperBroker.on_market` (it changes only the venue's quote then, as the proof says; the desk's mark is
  overwritten by the next one before anything reads it). Quiet marks before it change nothing that is left.
* The bar's last mark always reaches the desk's marks (`fast_forward_mark` when quiet): the closed bar that
  follows it does not replace a mark price, and the desk prices and checks at the marks. The venue takes the
  closed bar's price itself, travelling from the last mark it saw through a stretch the proof showed empty.

The closed bar goes through the desk as before (the caller sends it). The journal is the same, event for event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from guard.approval.desk import ApprovalDesk
from guard.approval.state import DAY_MS
from guard.broker.paper import PaperBroker
from guard.broker.paper_market import bar_path
from guard.clock import TestClock
from guard.domain import MarkPrice
from guard.journal.store import Journal
from guard.replay.history import SymbolHistory
from guard.replay.inline import drive
from guard.replay.lean import Exposure
from guard.replay.prepared import ReplaySymbol


def bar_marks(h: SymbolHistory, i: int) -> tuple[float, float, float, float]:
    """The marks bar i visits, in order (`guard.broker.paper_market.bar_path`)."""
    return bar_path(float(h.opens[i]), float(h.highs[i]), float(h.lows[i]), float(h.closes[i]))


def quiet_mark(x: Exposure, j: int, start: float | None, price: float, realized: float, others: float) -> bool:
    """Whether a mark of symbol j at `price`, travelling from `start` (None: it may gap there), can change nothing.

    Args:
        realized: what the daily loss check counts as booked today at this mark's time (float).
        others: the unrealized PnL of the positions on other symbols, at their marks (NaN when one has none).
    """
    for bj, lo, hi in x.bands:
        if bj == j:
            if not (lo < price < hi) or (start is not None and not lo < start < hi):
                return False
            break
    if x.active:
        pnl = realized + others
        for pj, qty, entry in x.positions:
            if pj == j:
                pnl += qty * (price - entry)
        if not -pnl < x.limit - x.margin:  # NaN: not shown
            return False
    return True


def work_marks(
    desk: ApprovalDesk,
    broker: PaperBroker,
    clock: TestClock,
    journal: Journal,
    exposure: Callable[[], Exposure],
    x: Exposure,
    s: ReplaySymbol,
    path: Sequence[float],
    times: Sequence[int],
    closes: Sequence[float],
) -> Exposure:
    """Send one symbol's intrabar marks, those that can do something through the desk; return the exposure after.

    Args:
        journal: the desk's (anything that changes what the proof reads is journaled).
        exposure: reads the exposure anew.
        x: the exposure now.
        closes: each symbol's last close (its mark as the desk holds it, for the daily loss of the others).
    """
    symbol, j = s.history.symbol, s.j
    due = broker.next_funding_ms(symbol)
    if broker.mark(symbol) is None or (due is not None and due <= times[-1]):
        for at, price in zip(times, path, strict=True):
            clock.set(max(clock.now_ms(), at))
            drive(desk.on_market(MarkPrice(symbol, at, price)))
        return x  # read again by the caller's refresh when anything was journaled
    sent = -1  # the last mark the venue saw, in this bar
    start: float | None = None  # the price the next mark travels from (None: the first mark may gap)
    seq = journal.last_seq
    for k, price in enumerate(path):
        at = times[k]
        if x.positions and x.active:
            others = sum(q * (closes[pj] - e) for pj, q, e in x.positions if pj != j)
            realized = x.daily_realized if at // DAY_MS == x.daily_day else 0.0
        else:
            others = realized = 0.0
        if quiet_mark(x, j, start, price, realized, others):
            start = price
            continue
        if sent < k - 1:  # the venue travels to this mark from the one before
            before = times[k - 1]
            clock.set(max(clock.now_ms(), before))
            if broker.on_market(MarkPrice(symbol, before, path[k - 1])):
                raise RuntimeError(f"replay: a mark of {symbol} at {before} shown quiet acted")
        clock.set(max(clock.now_ms(), at))
        drive(desk.on_market(MarkPrice(symbol, at, price)))
        sent = k
        start = price
        if journal.last_seq != seq:
            seq = journal.last_seq
            x = exposure()
    if sent < len(path) - 1:
        desk.fast_forward_mark(MarkPrice(symbol, times[-1], path[-1]))
    return x
