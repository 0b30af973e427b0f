"""Replay throughput: the whole pipeline against backtesting.py on the same 1-minute bars, and no
slowdown as trades accumulate; and what each proposal costs, part by part.

guard's figure is `ReplayEngine.run()` end to end: features and model over the whole history
(batched), then every proposal through the sizing policy, the risk checks, the scripted
operator (approve-all), the approval desk, the paper broker (fills, stops, take-profits,
liquidation, funding, intrabar marks) and the hash-chained journal (SQLite, synchronous=NORMAL,
batched commits), with the live tracker scoring the model. backtesting.py runs an SMA(10, 30)
cross — a comparable number of trades — on the very same bars, in the same process, right after.
The bars are the simulator's "trend" scenario (where the default model proposes about once
every 30 bars). backtesting.py is an optional extra: `pip install -e '.[bench]'`.

The per-proposal figures come from one more replay of the same bars with a stopwatch around each part
(its own overhead, a few µs a proposal, lands in "desk"): desk = inside the desk's calls (pricing, the
gate and risk checks twice, the state folded, the journal's append bookkeeping, replay's count and
audit, a worked bar's intrabar marks too) less the broker and the journal; broker = the paper broker's
fills, triggers and marks; journal encode = msgspec and the hash chain; journal write = SQLite; tracker = the
live tracker (its closed bars too); engine = the rest of replay (Signals, the policy, the lean path's proofs and
fast-forwards). Up to the fifth round below, the desk calls of the intrabar marks (sent from `guard.replay.marks`)
and the tracker's closed bars were counted under "engine": about 60 µs a proposal. Wall-clock figures on a
machine shared with other work: each rate is the best of three runs (`RUNS`), and the ratio, measured in one
process, moves less than the bars/s.

Replay shares the live path (the same desk, broker, journal and tracker; the replay = live determinism test
holds, and a 50,000-bar replay's journal is the same event for event, apart from pid and journal id), so the
per-proposal path was made lean where the daemon runs it too. A first round (cProfile, pyinstrument, and
callgrind's instruction counts for a 10,000-bar replay: 2.07 G before, 1.46 G after): the policy's cooldown bars
are skipped instead of priced (4 of 5 candidate bars), the lean path re-reads the desk only after an event,
replay's journal settles each append without a thread-safe Future, each event is encoded once and its bytes
hashed, disabled log calls are a bare return, the auditor and the replay's counters find an event's rule by its
type, and a Signal no longer copies its feature window. A second round, once the paper broker's price travelled
within a bar (callgrind, the replay's share of a 10,000-bar run, the process's start-up taken out, with
PYTHONHASHSEED=0: 1.61 G before, 1.42 G after): hot-path enum members are module constants (`guard.domain.BUY`,
`PENDING`, `BLOCK`...: Python 3.11's `EnumType.__getattr__` hook made each `Side.BUY` a slow lookup, ~420 of
them a proposal); the paper broker keeps each symbol's resting orders with their levels and nearest triggers
until its book changes, so a price that reaches none of them is answered at once, and the lean path reads its
bands from them; the tracker's settling bar is found with two searches and a numpy pre-filter (then judged with
the tracker's own arithmetic); the state's pending list is kept until the next event is applied; the risk checks
convert config floats to Decimal once. On a quiet machine (load 0.6-0.8) this round took the 200,000-bar replay
from 31,593 to 39,644 bars/s (ratio 0.257 to 0.38 in those two runs: backtesting.py's own rate moves between
about 104,000 and 130,000 bars/s from run to run, and the ratio with it).

A third round, profile by profile (cProfile's call counts and callgrind's instruction counts, since wall time on
this shared 2-core machine moved by 10 % between runs of the same code): the live order book is an index of the
orders not ended, so protection no longer scanned every order ever sent at each fill (quadratic in a long replay:
~0.56 s of a 50,000-bar run); an entry's fills and its stop's and take-profit's intents are one durable commit (one
append fewer an approval, and one fsync fewer between a live fill and its stop); the paper venue's ledger and the
desk's fold share each fill's booking through a `Bookings` handed to both in the wiring; a taker fill's price and
fee are worked out once; the checks' context is a msgspec struct, their fixed wordings and the limits' texts made
once; the replay's next candidate is known for every group up to it and one lean proof covers the quiet groups and
the next busy one; the model pass keeps only logits, runs on a worker thread a chunk at a time ahead of the
replay (`guard.replay.prepared.ModelAhead`, the same numbers bit for bit) and the bar grid skips `np.unique` for
one history; the journal auditor formats a message only when a check fails; the fold's enum members are module
globals. The 200,000-bar replay alone, on a quiet machine: 38,174 bars/s before this round (best of 2), 48,400-49,300
after (best of 5, in runs alternated with the variants tried); cProfile's Python calls a proposal, 50,000 bars:
1,724 -> 1,550.

Tried and dropped in that round: writing the journal's batches on a thread of their own (SQLite lets go of the
interpreter while it writes, but binding each row takes it back: best of 5, 44,502 bars/s with it, 48,427 without);
two torch threads for the model (different floats: the replay must make the live path's numbers); a transposed
softmax (4x faster, 58k of 200k rows different in the last bits); reusing the pricing's risk verdicts at the
decision when "nothing changed" (~3 %, but it needed a record of past judgments keyed on a hand-kept list of what
the checks read, which a new check could silently outgrow: a decision still re-checks everything). Weighed and
not built: skipping the idle intrabar marks of a worked bar (about 16,000 of the 27,000 market events sent to the
desk change nothing; a proof per mark would save an estimated 2-3 % net).

A fourth round, area by area, each change proven by the journal of a 50,000- and a 200,000-bar replay being the
same event for event, and measured by cProfile's call counts and the replay thread's CPU time (the only figures that
held still on this shared machine): the paper venue's order arithmetic set once per order and its resting-order
view extended, not rebuilt (`guard/broker/paper_orders.py`); bookings and rulings as msgspec structs; values already
on the tick or step grid returned as they are by `round_price`/`round_qty`; the risk checks' pass verdicts built
directly; the fold's live orders and resting reduce-only quantities as an index (`approval/records.LiveOrders`), so
an entry fill's stop room is read, not walked; a protective order's log fields built only for a line that is
written; a worked bar sends the desk only the intrabar marks that can do something (`guard/replay/marks.py`:
21,600 -> 6,000 desk mark events in 200,000 bars); the lean proof's short looks and the settling bar in plain
Python; the exposure's floats converted only when their value changed (`lean.ExposureReader`); the tracker fed
from the arrays; the journal's rows made in one call per append, and a long replay's rows chained and written by a
writer process on the other core (`guard/journal/offload.py`: the replay's thread only encodes; the same hashes,
tested row for row). The model's pass ahead of the replay on a worker thread (third round) was dropped: once the
replay's own path was lean the two threads' fight over the interpreter (each numpy call that lets go of it waited
to get it back, 5 -> 21 us for a `searchsorted`) cost more than the overlap gave (best of 3, alternated: 53,300
bars/s with it, 60,800 without). cProfile's Python calls a proposal, 50,000 bars: 1,511 -> 1,193; the replay's
thread, 200,000 bars: ~4.2 -> ~3.1 CPU-seconds; the bench's rate ~45,000 -> 58,000-64,000 bars/s.

A fifth round, on what surrounds the replay's loop: the model's pass runs its chunks on two threads, each with
one intra-op thread (the same numbers bit for bit: the two torch threads tried before changed the arithmetic,
whole chunks side by side do not), each chunk's outputs made on its thread, while the main thread builds the bar
grid and the broker's variances (the preparation 0.45-0.50 -> 0.32-0.39 s); the writer process checkpoints its WAL
every 2 MB as it goes (SQLite's default left the whole journal to copy at the close) and ends with `os._exit` once
its database is closed, and the result's figures are worked out while it writes its last rows (closing 200,000
bars' journal ~100 -> ~14 ms). The measurement: each timed run, guard's and backtesting.py's, starts from a collected
heap. Tried and dropped there: guard's runs and backtesting.py's taking turns, meant to spread a slow spell of the
shared machine over both; it measured backtesting.py cold (82,000-107,000 bars/s right after a guard run, against
its 123,000-136,000 after its own runs), which flattered guard's ratio (0.53-0.68), so each side runs its three
back to back again, the other's best warm state against guard's. Also tried and dropped: the variances' recurrence
through `itertools.accumulate` (slower than the plain loop: 44 -> 59 ms); the outputs made once for the whole
history after the pass instead of a chunk at a time (no faster: two cores are busy either way); and the model's
pass in a child forked ahead of the replay, its outputs in shared memory and its progress told through a pipe (the
replay taking each chunk's candidates as it reached them, and running the rest itself if the child went quiet):
the preparation went from ~0.35 to ~0.145 s, about 6 % of the run, and the journal of a 200,000-bar replay stayed
the same event for event, but in two of some forty runs of its tests the child hung, silent for the 30 s the replay
waited before taking over. A fork of a process that holds torch's native threads is not safe enough for a replay.

Where it stands: about 0.39-0.43 ms a proposal; the preparation (features, the model's pass, the grid, the
variances) is about a tenth of a 200,000-bar run. Nine runs of this bench within twenty minutes gave 0.478-0.583
(eight of them at or above 0.5; guard 48,700-72,600 bars/s, backtesting.py 101,900-137,100); earlier the same day,
in a slower spell of the shared machine, 0.46-0.49; eight runs in a row the next session, 0.496-0.563, median 0.518
(guard 66,300-69,900 bars/s, backtesting.py 124,200-137,800); nine more with each rate the best of five runs instead
of three: 0.514-0.540 in a quiet spell (six runs), 0.470-0.515 in a slower one of the host's (three runs: guard
61,500-67,400 bars/s). Where the replay's thread spends its time (py-spy, 500 samples a second over five 200,000-bar
runs): approvals 32 % (the decision's re-check 5 %, the entry's fill, its stop and take-profit sent and journaled
27 %), the worked bars' market events 18 %, proposals priced, checked and queued 12.5 %, the preparation 9.6 %, the
policy 4.5 %, the lean path's proofs and reads 7 %; by function, nothing above 4.3 % (msgspec encoding each event).
What is left is Decimal arithmetic and exact texts that are journaled (the risk checks' reasons, the fills), the
fold of ~10 events a proposal, and the replay's own loop: a flat profile, no part above a few percent. The next
design would need fewer, larger steps on the live path itself: the desk taking a bar's whole price path in one call,
so the broker acts only at the levels the path reaches and the desk folds once; prices and quantities as integer
ticks and steps instead of Decimal; and the model's pass on the other core without sharing an interpreter: a process
of its own, spawned (not forked) and kept warm, since importing torch alone takes ~2 s here.
"""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
START_MS = 1_767_225_600_000
SYMBOL = "BTC/USDT:USDT"
SPARSE_CONFIDENCE = 0.65
"""A stricter policy, for the figure with fewer proposals."""


def _bars(n: int) -> Any:
    from guard.replay.history import SymbolHistory
    from guard.sim.process import PriceProcess

    process = PriceProcess([SYMBOL], START_MS, seed=5, scenario="trend")
    block = process.advance(n)
    return SymbolHistory(SYMBOL, "1m", block.open_time, *process.bars_of(block, 0))


@dataclass(frozen=True)
class _Replay:
    result: Any
    """The ReplayResult."""
    cpu_rate: float
    """Bars per second of this process's CPU time: what other work on the machine does not change."""


def _guard(history: Any, n: int, min_confidence: float | None = None) -> tuple[float, _Replay]:
    from guard.config import Config, config_from_dict
    from guard.model.artifact import load_model
    from guard.replay.engine import ReplayEngine, ReplayOptions
    from guard.replay.history import SymbolHistory
    from guard.replay.operator import OperatorPolicy, ScriptedOperator

    part = SymbolHistory(
        history.symbol,
        history.timeframe,
        history.open_times[:n],
        history.opens[:n],
        history.highs[:n],
        history.lows[:n],
        history.closes[:n],
        history.volumes[:n],
    )
    model = load_model(ROOT / "models" / "default")
    config = Config() if min_confidence is None else config_from_dict({"proposals": {"min_confidence": min_confidence}})
    with tempfile.TemporaryDirectory() as tmp:
        engine = ReplayEngine(
            config, model, [part], ReplayOptions(ScriptedOperator(OperatorPolicy.APPROVE_ALL)), Path(tmp) / "j.db"
        )
        gc.collect()  # what the run before left behind is not this run's to collect (nor the peer's, below)
        started, cpu = time.perf_counter(), time.process_time()
        result = asyncio.run(engine.run())
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return n / seconds, _Replay(result, n / cpu)


class _Stopwatch:
    """Wall time spent inside chosen functions, for one instrumented replay (the figures come from an
    uninstrumented one). Each function is wrapped where its caller finds it and put back afterwards."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._undo: list[tuple[Any, str, Any]] = []

    def watch(self, bucket: str, owner: Any, name: str) -> None:
        original = getattr(owner, name)
        seconds = self.seconds
        seconds.setdefault(bucket, 0.0)
        clock = time.perf_counter

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[bucket] += clock() - started

        self._undo.append((owner, name, original))
        setattr(owner, name, timed)

    def restore(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)


def _breakdown(history: Any, n: int) -> tuple[dict[str, float], int, float]:
    """Microseconds per proposal in each part of the pipeline, from one instrumented replay of n bars.

    desk: everything inside the desk's calls (pricing, the gate and risk checks, state folding, the
    journal's append bookkeeping and replay's counting) but the three parts below it; broker: the paper
    broker's fills, triggers and marks; journal encode: msgspec; journal write: SQLite for a replay's first
    rows, then handing rows to the journal's writer process (which links and writes them on the other core);
    tracker: the live tracker; engine: the rest of replay (signals, policy, lean-path proofs, fast-forward).
    """
    from guard import codec
    from guard.broker.paper import PaperBroker
    from guard.journal import offload, store
    from guard.model.tracker import LiveTracker
    from guard.replay import engine, marks

    watch = _Stopwatch()
    watch.watch("desk", engine, "drive")  # broker and journal time is inside it: taken out below
    watch.watch("desk", marks, "drive")  # a worked bar's intrabar marks, sent from guard.replay.marks
    for name in ("on_market", "submit_many", "cancel_many"):
        watch.watch("broker", PaperBroker, name)
    watch.watch("journal encode", codec, "encode")
    watch.watch("journal write", store, "write_rows")  # the first rows, before the writer process takes over
    watch.watch("journal write", offload.WriterProcess, "send")
    for name in ("record", "on_closed_bar", "decision"):  # replay feeds it closed bars as numbers, not Bars
        watch.watch("tracker", LiveTracker, name)
    watch.watch("preparation (once)", engine.ReplayEngine, "_prepare")
    try:
        _, replay = _guard(history, n)
    finally:
        watch.restore()
    t = watch.seconds
    result = replay.result
    proposals = max(result.stats.proposals, 1)
    inside = t["broker"] + t["journal encode"] + t["journal write"]
    parts = {
        "desk": t["desk"] - inside,
        "broker": t["broker"],
        "journal encode": t["journal encode"],
        "journal write": t["journal write"],
        "tracker": t["tracker"],
        "engine": result.seconds - t["desk"] - t["tracker"] - t["preparation (once)"],
    }
    per = {k: v / proposals * 1e6 for k, v in parts.items()}
    return per, result.stats.proposals, t["preparation (once)"]


RUNS = 3
"""Each rate is the best of this many runs: on a machine shared with other work, the fastest run is the one
least disturbed by it (guard and backtesting.py alike). Five were tried: nine runs of this bench gave 0.470-0.540
(three gave 0.496-0.563 in eight), so the shared host's slow spells outlast the bench either way."""

T = TypeVar("T")


def _best(run: Callable[[], tuple[float, T]]) -> tuple[float, T]:
    """The run with the highest rate (the first value) of RUNS."""
    return max((run() for _ in range(RUNS)), key=lambda r: r[0])


def _backtesting(history: Any, n: int) -> tuple[float, int] | None:
    """backtesting.py over the first `n` bars, as (bars/s, trades), the best of RUNS; None when it is not installed."""
    try:
        import pandas as pd
        from backtesting import Backtest, Strategy
        from backtesting.lib import crossover
        from backtesting.test import SMA
    except ImportError:
        return None

    class SmaCross(Strategy):
        def init(self) -> None:
            self.fast = self.I(SMA, self.data.Close, 10)
            self.slow = self.I(SMA, self.data.Close, 30)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.position.close()
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()
                self.sell()

    frame = pd.DataFrame(
        {
            "Open": history.opens[:n],
            "High": history.highs[:n],
            "Low": history.lows[:n],
            "Close": history.closes[:n],
            "Volume": history.volumes[:n],
        },
        index=pd.to_datetime(history.open_times[:n], unit="ms"),
    )

    def once() -> tuple[float, int]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gc.collect()  # a guard run's garbage left for backtesting.py's collections slowed it by up to a fifth
            started = time.perf_counter()
            bt = Backtest(frame, SmaCross, cash=10_000_000, commission=0.0005, finalize_trades=True)
            stats = bt.run()
            seconds = time.perf_counter() - started
        return n / seconds, int(stats["# Trades"])

    return _best(once)


def run(quick: bool) -> Iterable[dict[str, Any]]:
    import structlog

    from guard import logs

    if not structlog.is_configured():
        logs.configure(level="error")  # stdout carries the figures
    big, small = (50_000, 5_000) if quick else (200_000, 20_000)
    history = _bars(big)
    _guard(history, 2_000)  # warm: torch's first forward pass, imports
    _, small_run = _best(lambda: _guard(history, small))
    big_rate, big_run = _best(lambda: _guard(history, big))
    s = big_run.result.stats
    yield {
        "figure": f"replay, whole pipeline, {big:,} bars",
        "value": round(big_rate),
        "unit": "bars/s",
        "p50": None,
        "p99": None,
        "target": "",
        "met": None,
        "note": f"{s.proposals:,} proposals, {s.approved:,} approved, {s.fills:,} fills ({s.stops:,} stops, "
        f"{s.take_profits:,} take-profits), {s.events:,} journal events; {s.groups_worked:,} bars worked "
        f"one event at a time, the rest proven idle",
    }
    ratio = big_run.cpu_rate / small_run.cpu_rate
    yield {
        "figure": f"replay bars per CPU-second at {big:,} vs {small:,} bars",
        "value": round(ratio, 3),
        "unit": "ratio",
        "p50": None,
        "p99": None,
        "target": ">= 0.8",
        "met": ratio >= 0.8,
        "note": f"{small_run.cpu_rate:,.0f} bars per CPU-second at {small:,} bars "
        f"({small_run.result.stats.fills:,} fills), {big_run.cpu_rate:,.0f} at {big:,} ({s.fills:,} fills): "
        "no slowdown as trades accumulate (CPU time: a shared machine's bursts land on short and long runs "
        "unevenly)",
    }
    sparse_rate, sparse_run = _best(lambda: _guard(history, big, min_confidence=SPARSE_CONFIDENCE))
    ss = sparse_run.result.stats
    peer = _backtesting(history, big)
    if peer is None:
        yield {
            "figure": "replay vs backtesting.py",
            "value": None,
            "unit": "ratio",
            "p50": None,
            "p99": None,
            "target": ">= 1.0",
            "met": None,
            "note": "backtesting.py is not installed: pip install -e '.[bench]' to measure the comparison",
        }
        return
    peer_rate, trades = peer
    yield {
        "figure": f"backtesting.py SMA(10, 30) cross, {big:,} bars",
        "value": round(peer_rate),
        "unit": "bars/s",
        "p50": None,
        "p99": None,
        "target": "",
        "met": None,
        "note": f"{trades:,} trades; same bars, same process, measured right after guard; each rate the best of "
        f"{RUNS} runs",
    }
    yield {
        "figure": "replay vs backtesting.py (bars/s)",
        "value": round(big_rate / peer_rate, 3),
        "unit": "ratio",
        "p50": None,
        "p99": None,
        "target": ">= 1.0",
        "met": big_rate >= peer_rate,
        "note": f"guard {big_rate:,.0f} bars/s with the whole pipeline and a proposal every "
        f"{big / max(s.proposals, 1):.0f} bars ({s.entries_filled:,} entries); backtesting.py "
        f"{peer_rate:,.0f} bars/s with {trades:,} trades. Each proposal costs ~"
        f"{_per_proposal_ms(big_rate, sparse_rate, big, s.proposals, ss.proposals):.2f} ms "
        "(priced, risk-checked twice, decided, filled, protected, ~11 hash-chained journal events); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
    }
    per, proposals, model_s = _breakdown(history, big)
    total = sum(per.values())
    shares = ", ".join(f"{part} {us:,.0f} µs ({us / total:.0%})" for part, us in per.items())
    breakdown = (
        f"per proposal, {total:,.0f} µs: {shares} (one instrumented run of the {big:,} bars, {proposals:,} proposals, "
        f"default proposals.min_confidence; not included: the preparation, once, {model_s * 1000:,.0f} ms (features, "
        "the model's pass over every bar, the bar grid)"
    )
    for part, us in per.items():
        yield {
            "figure": f"replay per proposal: {part}",
            "value": round(us, 1),
            "unit": "µs",
            "p50": None,
            "p99": None,
            "target": "",
            "met": None,
            "note": breakdown,
        }
    yield {
        "figure": f"replay vs backtesting.py, proposals.min_confidence = {SPARSE_CONFIDENCE}",
        "unit": "ratio",
        "value": round(sparse_rate / peer_rate, 3),
        "p50": None,
        "p99": None,
        "target": ">= 1.0",
        "met": sparse_rate >= peer_rate,
        "note": f"guard {sparse_rate:,.0f} bars/s with a proposal every {big / max(ss.proposals, 1):,.0f} bars "
        f"({ss.proposals:,} proposals, {ss.fills:,} fills) against backtesting.py's {peer_rate:,.0f}",
    }


def _per_proposal_ms(rate_a: float, rate_b: float, bars: int, props_a: int, props_b: int) -> float:
    """Marginal cost of a proposal: the difference in run time over the difference in proposals."""
    if props_a == props_b:
        return float("nan")
    return (bars / rate_a - bars / rate_b) / (props_a - props_b) * 1000
