"""The daemon's metrics in Prometheus' format (prometheus_client), and the optional read-only listener for them.

`Metrics` owns a registry of its own (never the library's global one). What happened is counted from the
committed journal entries (`observe`), as the hub sees them: kill latency (the daemon's own measure of
each kill), approval latency (an approval journaled -> its entry's first fill), how long operators took
to decide, proposals by fate, and the model's confidence and novelty per signal (`observe_signal`); the
feed's lag is observed as market data arrives (`observe_feed_lag`). What the daemon is, now (trading
state, queue, equity, positions, operators, loop lag, the pipeline's counters, feed health), is read at
each scrape by a collector over a `MetricsSource`.

`MetricsListener` serves `GET /metrics` alone, with no token, on a loopback TCP port (`api.metrics`,
`api.metrics_port`):
a stock Prometheus can scrape it, and it can neither read nor change anything else. The control API's
own `/metrics` (behind the token) serves the same text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from guard.config import is_loopback
from guard.domain import DecisionKind, FeedHealth, MarketEvent, MarkPrice, Ticker, TradingState
from guard.errors import DaemonError
from guard.events import (
    DecisionRecorded,
    KillCompleted,
    OrderFilled,
    ProposalExpired,
    ProposalFailed,
    ProposalKilled,
    ProposalQueued,
    ProposalRefused,
    ProposalRepriced,
)
from guard.journal.chain import Entry

log = structlog.get_logger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds: a kill or an approval's fill takes milliseconds; a venue in trouble, seconds."""
DECISION_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Seconds an operator takes to decide (the default time-to-live is 30 s)."""
FEED_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
FRACTION_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9, 0.95, 0.99, 1.0)
FATES = ("queued", "refused", "repriced", "filled", "rejected", "expired", "killed", "failed")
"""What became of proposals: queued (or refused before the queue), new versions, and how each one ended."""


class MetricsSource(Protocol):
    """What the daemon is right now, read at each scrape."""

    def trading_state(self) -> TradingState: ...

    def gauges(self) -> Mapping[str, float]:
        """Gauge name (without the guard_ prefix) -> value."""
        ...

    def counters(self) -> Mapping[str, float]:
        """Counter name (without the guard_ prefix and _total suffix) -> value."""
        ...

    def feed_health(self) -> Mapping[str, FeedHealth]: ...

    def pipeline_steps(self) -> Mapping[str, int]:
        """The pipeline's counters by step (empty without a model)."""
        ...


class Metrics:
    """The daemon's metrics: histograms and counters fed as things happen, gauges read at each scrape."""

    def __init__(self, source: MetricsSource) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.kill_seconds = Histogram(
            "guard_kill_seconds",
            "A kill from its request to flat (or given up), as the daemon measured it.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.approval_seconds = Histogram(
            "guard_approval_seconds",
            "An approval or override journaled -> the first fill of its entry order.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decision_seconds = Histogram(
            "guard_decision_seconds",
            "A proposal queued -> an operator's decision on it.",
            ["kind"],
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.proposals = Counter("guard_proposal_fates", "Proposals by what became of them.", ["fate"], registry=r)
        for fate in FATES:
            self.proposals.labels(fate)
        self.feed_lag_seconds = Histogram(
            "guard_feed_lag_seconds",
            "Exchange timestamp of a price -> the daemon handling it.",
            buckets=FEED_LAG_BUCKETS,
            registry=r,
        )
        self.model_confidence = Histogram(
            "guard_model_confidence",
            "The model's calibrated confidence, per signal.",
            buckets=FRACTION_BUCKETS,
            registry=r,
        )
        self.model_novelty = Histogram(
            "guard_model_novelty",
            "The model's novelty percentile against its training data, per signal.",
            buckets=FRACTION_BUCKETS,
            registry=r,
        )
        self.bar_to_proposal_seconds = Histogram(
            "guard_bar_to_proposal_seconds",
            "A closed bar reaching the pipeline -> its proposal queued.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        r.register(_StateCollector(source))
        self._approved_at: dict[str, int] = {}
        """Proposal id -> when its approval was journaled (ms), until its entry's first fill."""

    def text(self) -> str:
        """Everything, in Prometheus' text format."""
        return generate_latest(self.registry).decode()

    def observe(self, entries: Sequence[Entry]) -> None:
        """Count what the committed entries say happened."""
        fates = self.proposals
        for entry in entries:
            e = entry.event
            if isinstance(e, ProposalQueued):
                fates.labels("queued").inc()
            elif isinstance(e, ProposalRefused):
                fates.labels("refused").inc()
            elif isinstance(e, ProposalRepriced):
                fates.labels("repriced").inc()
            elif isinstance(e, DecisionRecorded):
                self.decision_seconds.labels(e.kind.value).observe(max(e.at - e.shown.created_at, 0) / 1000)
                if e.kind is DecisionKind.REJECT:
                    fates.labels("rejected").inc()
                else:
                    self._approved_at[e.proposal_id] = e.at
            elif isinstance(e, OrderFilled):
                pid = _entry_of(e.fill.client_order_id)
                approved = self._approved_at.pop(pid, None)
                if approved is not None:
                    fates.labels("filled").inc()
                    self.approval_seconds.observe(max(e.at - approved, 0) / 1000)
            elif isinstance(e, ProposalExpired):
                fates.labels("expired").inc()
            elif isinstance(e, ProposalKilled):
                fates.labels("killed").inc()
                self._approved_at.pop(e.proposal_id, None)
            elif isinstance(e, ProposalFailed):
                fates.labels("failed").inc()
                self._approved_at.pop(e.proposal_id, None)
            elif isinstance(e, KillCompleted):
                self.kill_seconds.observe(e.elapsed_ms / 1000)

    def observe_signal(self, confidence: float, novelty: float) -> None:
        """One signal of the model."""
        self.model_confidence.observe(confidence)
        self.model_novelty.observe(novelty)

    def observe_feed_lag(self, event: MarketEvent, now_ms: int) -> None:
        """How old a price was when the daemon handled it (marks and tickers carry the exchange's timestamp; a
        simulator faster than real time stamps ahead of the clock, which counts as no lag)."""
        if isinstance(event, (MarkPrice, Ticker)) and event.timestamp > 0:
            self.feed_lag_seconds.observe(max(now_ms - event.timestamp, 0) / 1000)


def _entry_of(client_order_id: str) -> str:
    """The proposal id of an entry order's client order id ("g<journal>-P000001-E"), or ""."""
    parts = client_order_id.rsplit("-", 2)
    return parts[1] if len(parts) == 3 and parts[2] == "E" else ""


class _StateCollector(Collector):
    """The daemon's state at the moment of a scrape."""

    def __init__(self, source: MetricsSource) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        source = self._source
        state = GaugeMetricFamily("guard_trading_state", "1 for the current trading state.", labels=["state"])
        current = source.trading_state()
        for s in TradingState:
            state.add_metric([s.value], int(current is s))
        yield state
        for name, value in source.gauges().items():
            yield GaugeMetricFamily(f"guard_{name}", name.replace("_", " "), value=value)
        for name, value in source.counters().items():
            yield CounterMetricFamily(f"guard_{name}", name.replace("_", " "), value=value)
        feeds = GaugeMetricFamily("guard_feed_healthy", "1 while a symbol's market data is healthy.", labels=["symbol"])
        for symbol, health in sorted(source.feed_health().items()):
            feeds.add_metric([symbol], int(health.healthy))
        yield feeds
        steps = source.pipeline_steps()
        if steps:
            pipeline = CounterMetricFamily("guard_pipeline", "The proposal pipeline's steps.", labels=["step"])
            for step, count in steps.items():
                pipeline.add_metric([step], count)
            yield pipeline


def pipeline_steps(stats: Any) -> dict[str, int]:
    """A pipeline's counters by step, from its `stats()` (the latencies left out: they are not a count)."""
    return {k: v for k, v in dataclasses.asdict(stats).items() if isinstance(v, int)}


class MetricsListener:
    """`GET /metrics` on a loopback TCP port, with no token: read-only, and nothing else is served there.

    Args:
        host: a loopback address (anything else is refused).
        port: the port (0 picks a free one; `port` tells which once started).
        text: the metrics, in Prometheus' text format.
    """

    def __init__(self, host: str, port: int, text: Callable[[], str]) -> None:
        if not is_loopback(host):
            raise DaemonError(f"refusing to serve metrics on {host}: only loopback addresses (api.metrics_host)")
        self._host = host
        self._port = port
        self._text = text
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._get)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("metrics_listening", host=self._host, port=self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _get(self, request: web.Request) -> web.Response:
        return web.Response(body=self._text().encode(), headers={"Content-Type": CONTENT_TYPE_LATEST})
