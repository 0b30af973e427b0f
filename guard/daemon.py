"""The daemon: builds every part from the config and runs them under one TaskGroup. Wiring only.

exchange -> feed -> pipeline (features, model, proposals) -> desk (risk, approval, broker, journal)
                                                             -> hub -> control API -> TUIs

SIGTERM / SIGINT stop it gracefully (pending proposals expire, the journal is flushed,
positions are left alone); SIGUSR1 pulls the kill switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

import structlog

from guard import collector
from guard.api.access import load_or_create_token
from guard.api.clients import Presence
from guard.api.credentials import CredentialStore
from guard.api.hub import Hub
from guard.api.metrics import Metrics, MetricsListener
from guard.api.server import ApiServer
from guard.api.views import DaemonViews, LoopLag
from guard.approval.desk import ApprovalDesk, DeskSettings
from guard.broker.base import Broker
from guard.broker.paper import PaperBroker
from guard.clock import Clock, SystemClock
from guard.config import Config
from guard.domain import (
    AcknowledgmentKind,
    Bar,
    MarketEvent,
    MarketSpec,
    MarkPrice,
    Ticker,
)
from guard.errors import ConfigError, DaemonError, GuardError, ModelFileError
from guard.events import AcknowledgmentRecorded, ModelPaused, ModelResumed
from guard.feed.process import Endpoint, FeedProcess
from guard.journal.chain import Entry
from guard.journal.store import Journal
from guard.lockfile import daemon_lock
from guard.logs import SecretRedactor, configure, log_file, reopen_log
from guard.paths import StatePaths, tighten
from guard.redaction import Scrubber
from guard.upkeep import expire, keep_kills, record_feed_health, watch_presence

log = structlog.get_logger(__name__)
E = TypeVar("E", bound=BaseException)

RESUME_BEFORE_SERVING_SECONDS = 5.0
"""How long commands wait at start for an interrupted kill to be completed. Past it the API is served anyway
(HALTED, re-arm refused until the kill is complete): an operator must be able to see why."""
SECRET_ENV_SUFFIXES = ("_API_KEY", "_SECRET", "_PASSWORD", "_PASSPHRASE", "_TOKEN")


class _Stop(Exception):
    """Raised inside the task group to end the daemon gracefully."""


class Daemon:
    """One running guard. `run()` until SIGTERM/SIGINT, or `stop()`."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        redactor: SecretRedactor | None = None,
        handle_signals: bool = True,
        freeze_startup_heap: bool = True,
        sim: Any = None,
    ) -> None:
        """
        Args:
            handle_signals: stop on SIGTERM/SIGINT (the daemon owns its process).
            freeze_startup_heap: once started, take the heap out of the cyclic collector's sight
                (`collector.freeze_long_lived`); off when the daemon is a guest in another program's process.
            sim: an already running simulated exchange (anything with `url` and `ws_url`) to use
                when `exchange.id` is "sim", instead of embedding one (benchmarks put the market's
                load in another process this way).
        """
        self.config = config
        self._handle_signals = handle_signals
        self._freeze_heap = freeze_startup_heap
        self._external_sim = sim
        self.paths = StatePaths(config.state_dir)
        self.clock = clock or SystemClock()
        self.redactor = redactor
        self.ready = asyncio.Event()
        """Set once the control API accepts connections."""
        self.desk: ApprovalDesk | None = None
        self.hub: Hub | None = None
        self.api: ApiServer | None = None
        self.lag = LoopLag()
        self._stop = asyncio.Event()
        self.views = DaemonViews(lambda: (self.lag.last_ms, self.lag.max_ms))
        """The model's status, card and record, the daemon's health, and what the metrics read at a scrape."""
        self.metrics = Metrics(self.views)
        self.metrics_port = 0
        """Where the read-only metrics listener took its port (0: `api.metrics` is off)."""
        self._model: Any = None
        self._predictor: Any = None
        self._pipeline: Any = None
        self._tracker: Any = None
        self._sim: Any = None
        self._endpoint: Any = None
        """Where the simulated exchange listens (for the sandbox broker when exchange.id is "sim")."""
        self._log_target = log_file()
        """The file stderr writes to when the daemon runs detached (`guard up`), reopened on SIGHUP."""

    def stop(self) -> None:
        self._stop.set()

    @property
    def sim(self) -> Any:
        """The embedded simulated exchange (drills script it), or None."""
        return self._sim

    async def run(self) -> None:
        config = self.config
        if self._handle_signals:
            os.umask(0o077)  # the daemon owns its process: the journal, its WAL, the log are the operator's alone
        self.paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for loose in tighten(self.paths):
            log.warning("state_file_permissions_tightened", path=loose)
        with daemon_lock(self.paths):
            token = load_or_create_token(self.paths.token)
            if self.redactor is not None:
                self.redactor.add(token)
                for name, value in os.environ.items():
                    if name.endswith(SECRET_ENV_SUFFIXES):
                        self.redactor.add(value)
            async with contextlib.AsyncExitStack() as stack:
                specs, feed = await self._market_data(stack)
                model_hash = await self._load_model()
                journal = Journal(self.paths.journal, synchronous=config.journal.synchronous)
                stack.callback(journal.close)
                broker, venue = await self._broker(specs, stack)
                settings = DeskSettings.from_config(config, model_hash)
                if venue is not None:
                    # A venue account holds what it holds: the journal's books start from it, not paper money.
                    settings = dataclasses.replace(settings, starting_balance=venue.starting_balance)
                bookings = broker.account.bookings if isinstance(broker, PaperBroker) else None  # one booking a fill
                desk = ApprovalDesk(journal, broker, specs, settings, self.clock, bookings)
                await desk.start()
                tighten(self.paths)  # the WAL and its index exist now
                desk.operator_present = False
                self.desk = self.views.desk = desk
                presence = Presence()
                presence.on_heard = self._operator_heard
                hub = Hub(
                    desk,
                    presence,
                    exchange=config.exchange.id,
                    broker=broker.name,
                    model_status=self.views.model_status,
                    hit_rates=self.views.hit_rates,
                    symbols=config.exchange.symbols,
                )
                self.hub = self.views.hub = hub
                watch = None
                if venue is not None:
                    watch = desk.watch_venue(venue.broker, venue.reconcile_seconds, alert=hub.alert)
                    await watch.start()
                loop = asyncio.get_running_loop()
                journal.subscribe(lambda entries: loop.call_soon_threadsafe(self._on_committed, entries))
                api = ApiServer(
                    config.api,
                    self.paths,
                    token,
                    hub,
                    presence,
                    health=self.views.health,
                    metrics=self.metrics.text,
                    model_card=self.views.card,
                    performance=self.views.performance,
                    credentials=CredentialStore(self.paths.root),
                    scrub=self.redactor.scrubber if self.redactor is not None else Scrubber([token]),
                )
                self.api = api
                await self._start_pipeline(desk, specs, feed)
                await self._serve_metrics(stack)
                if self._freeze_heap:
                    # What startup built (torch, ccxt, the model, the state rebuilt from the journal: ~360k
                    # objects) lives as long as the daemon; a full collection scanning it took ~140 ms, a
                    # stall a kill or a closed bar could land on.
                    collector.freeze_long_lived()
                try:
                    async with asyncio.TaskGroup() as tg:
                        self._signals(loop, tg, desk)
                        tg.create_task(feed.run(), name="feed")
                        tg.create_task(self._pump(feed, desk, hub), name="market-pump")
                        # Invariant 11: a kill a dead process left half done is finished before commands are served.
                        first_round = asyncio.Event()
                        tg.create_task(keep_kills(desk, hub, first_round), name="kill-keeper")
                        if desk.kill_unfinished or desk.deadman_unfinished:
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(first_round.wait(), RESUME_BEFORE_SERVING_SECONDS)
                        tg.create_task(record_feed_health(feed, desk), name="feed-health")
                        tg.create_task(expire(desk), name="expiry")
                        tg.create_task(watch_presence(presence, desk, config.operators), name="presence")
                        tg.create_task(hub.run(), name="hub")
                        tg.create_task(self.lag.run(), name="loop-lag")
                        if watch is not None:
                            tg.create_task(watch.run(), name="venue-watch")
                            tg.create_task(venue.deadman.run(), name="venue-deadman")
                        if self._pipeline is not None:
                            tg.create_task(self._pipeline.run(), name="pipeline")
                        tg.create_task(api.serve(self.ready), name="api")
                        await self._stop.wait()
                        await api.drain()  # commands in flight reach their broker before the session ends
                        await desk.stop("daemon stopped")
                        raise _Stop
                except* _Stop:
                    pass
                finally:
                    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP):
                        with contextlib.suppress(ValueError, RuntimeError):
                            loop.remove_signal_handler(sig)
                    if self._predictor is not None:
                        self._predictor.close()
        log.info("daemon_stopped")

    # --- building --------------------------------------------------------------------

    async def _broker(self, specs: dict[str, MarketSpec], stack: contextlib.AsyncExitStack) -> tuple[Broker, Any]:
        """The broker `exchange.broker` names, and for "sandbox" the venue with its dead-man switch."""
        if self.config.exchange.broker != "sandbox":
            return PaperBroker(specs, self.config.paper, self.clock), None
        from guard.broker.sandbox_venue import open_venue

        venue = await stack.enter_async_context(
            open_venue(self.config.exchange, specs, self.clock, sim=self._endpoint, redactor=self.redactor)
        )
        return venue.broker, venue

    async def _market_data(self, stack: contextlib.AsyncExitStack) -> tuple[dict[str, MarketSpec], FeedProcess]:
        config = self.config
        sim = None
        if config.exchange.id == "sim" and self._external_sim is not None:
            sim = self._external_sim
        elif config.exchange.id == "sim" and config.sim.url:
            url = config.sim.url.rstrip("/")
            sim = Endpoint(url, url.replace("http://", "ws://", 1))
        elif config.exchange.id == "sim":
            from guard.sim.server import SimExchange

            # An embedded venue keeps its books beside the journal: a SIGKILL must not lose its positions.
            venue = self.paths.root / "sim-venue.json" if config.exchange.broker == "sandbox" else None
            sim = await stack.enter_async_context(
                SimExchange(config.sim, config.exchange.symbols, self.clock, venue_file=venue)
            )
            self._sim = sim
        self._endpoint = sim
        # The feed parses in a process of its own: a flood of market data never queues the kill switch.
        feed = await stack.enter_async_context(FeedProcess(config.exchange, config.feed, sim=sim))
        specs = await feed.markets()
        missing = [s for s in config.exchange.symbols if s not in specs]
        if missing:
            raise DaemonError(f"{config.exchange.id} does not list {', '.join(missing)} (exchange.symbols)")
        return {s: specs[s] for s in config.exchange.symbols}, feed

    async def _load_model(self) -> str:
        """Load the model off the loop; a bad model file means no model proposals, not no daemon."""
        if not self.config.model.enabled:
            self.views.no_model_reason = "disabled by model.enabled = false"
            return ""
        try:
            from guard.model.artifact import load_model

            self._model = self.views.model = await asyncio.to_thread(load_model, self.config.model.path)
        except ModelFileError as e:
            self.views.no_model_reason = f"failed to load: {e}"
            log.error("model_not_loaded", path=self.config.model.path, error=str(e))
            return ""
        log.info("model_loaded", model_id=self._model.model_id, path=self.config.model.path)
        return str(self._model.model_hash)

    async def _start_pipeline(self, desk: ApprovalDesk, specs: dict[str, MarketSpec], feed: FeedProcess) -> None:
        if self._model is None:
            return
        from guard.proposals.live import build_live_path

        live = await build_live_path(
            self._model,
            self.config,
            desk,
            specs,
            self.clock,
            feed.recent_bars,
            self.metrics.observe_signal,
            self.metrics.bar_to_proposal_seconds.observe,
        )
        self._predictor = self.views.predictor = live.predictor
        self._tracker = self.views.tracker = live.tracker
        self._pipeline = self.views.pipeline = live.pipeline
        desk.sources.market_novelty = live.pipeline.market_novelty

    async def _serve_metrics(self, stack: contextlib.AsyncExitStack) -> None:
        """The read-only metrics listener on a loopback port, when `api.metrics` is on."""
        api = self.config.api
        if not api.metrics:
            return
        listener = MetricsListener(api.metrics_host, api.metrics_port, self.metrics.text)
        await listener.start()
        stack.push_async_callback(listener.stop)
        self.metrics_port = listener.port

    def _signals(self, loop: asyncio.AbstractEventLoop, tg: asyncio.TaskGroup, desk: ApprovalDesk) -> None:
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            return  # signals reach only the main thread; a daemon hosted in tests is stopped by stop()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: reopen_log(self._log_target))
        loop.add_signal_handler(
            signal.SIGUSR1, lambda: tg.create_task(desk.kill("signal", "SIGUSR1 (guard kill fallback)"))
        )

    # --- running ---------------------------------------------------------------------

    async def _pump(self, feed: FeedProcess, desk: ApprovalDesk, hub: Hub) -> None:
        """Market events to the desk (paper venue, marks), the hub (prices) and the pipeline (bars).

        A batch is about 10 ms of market. Within it only the latest mark, ticker and book of a
        symbol matter (the earlier ones are already superseded); every bar is kept. Between events
        the loop is given back, so a kill never waits behind market data.
        """
        pipeline, metrics, clock = self._pipeline, self.metrics, self.clock
        async for batch in feed.batches():
            for event in coalesce(batch):
                metrics.observe_feed_lag(event, clock.now_ms())
                await desk.on_market(event)
                if isinstance(event, MarkPrice):
                    hub.on_mark(event.symbol, event.mark)
                    if pipeline is not None:
                        pipeline.set_funding(event.symbol, event.funding_rate)
                elif isinstance(event, Ticker) and event.symbol not in desk.marks:
                    hub.on_mark(event.symbol, event.last)
                elif isinstance(event, Bar) and event.closed:
                    # The bars the daemon acted on are part of the record: replay can reproduce them.
                    desk.record_bar(event)
                    if pipeline is not None:
                        pipeline.on_bar(event)
                await asyncio.sleep(0)

    def _operator_heard(self) -> None:
        """An operator spoke: proposals are useful again (nothing else changes until they act)."""
        desk = self.desk
        if desk is not None and not desk.operator_present:
            desk.operator_present = True
            log.info("operator_present")
            if self.hub is not None:
                self.hub.publish_status()

    def _on_committed(self, entries: Sequence[Entry]) -> None:
        assert self.hub is not None
        self.hub.on_committed(entries)
        self.metrics.observe(entries)
        if self._predictor is None:
            return
        for entry in entries:
            event = entry.event
            if isinstance(event, ModelPaused):
                self._predictor.pause(event.reason)
            elif isinstance(event, ModelResumed):
                self._predictor.resume()
                self._tracker.reset()
                self._reconsider()
            elif isinstance(event, AcknowledgmentRecorded) and event.kind is AcknowledgmentKind.MODEL_PROPOSALS:
                self._reconsider()

    def _reconsider(self) -> None:
        if self._pipeline is not None:
            self._pipeline.reconsider()


def coalesce(batch: Sequence[MarketEvent]) -> list[MarketEvent]:
    """Keep every bar, and only the last mark price, ticker and book of each symbol, in arrival order."""
    last: dict[tuple[type, str], int] = {}
    for i, event in enumerate(batch):
        if not isinstance(event, Bar):
            last[(type(event), event.symbol)] = i
    return [e for i, e in enumerate(batch) if isinstance(e, Bar) or last.get((type(e), e.symbol)) == i]


def run_daemon(config: Config, fmt: str | None = None) -> int:
    """`guard daemon`: run in the foreground until SIGTERM/SIGINT.

    A config the machine cannot run is refused before anything starts (exit 2); a start that fails
    anyway (the venue unreachable, a symbol it does not list) ends with the cause on one log line
    (exit 1), which `guard up` shows from the log. Either way: no traceback, no waiting for a timeout.
    """
    from guard import preflight

    redactor = configure(config.log.level, fmt or config.log.format)
    problems = preflight.check(config)
    if problems:
        refusal = ConfigError.of(problems, config.source)
        log.error("daemon_refused", error="; ".join(refusal.lines()))
        return refusal.exit_code
    daemon = Daemon(config, redactor=redactor)
    exit_code = 0
    try:
        asyncio.run(daemon.run())
    except* GuardError as group:
        errors = _leaves(group)
        for error in errors:
            log.error("daemon_failed", error=str(error))
        exit_code = max(e.exit_code for e in errors)
    except* OSError as group:  # a port taken, a disk full at start: said, not dumped as a traceback
        for failure in _leaves(group):
            log.error("daemon_failed", error=f"{type(failure).__name__}: {failure}")
        exit_code = 1
    return exit_code


def _leaves(group: BaseExceptionGroup[E]) -> list[E]:
    """The exceptions of a group and of the groups inside it (task groups nest)."""
    out: list[E] = []
    for error in group.exceptions:
        out.extend(_leaves(error) if isinstance(error, BaseExceptionGroup) else [error])
    return out


@contextlib.asynccontextmanager
async def running(config: Config, clock: Clock | None = None, sim: Any = None) -> AsyncIterator[Daemon]:
    """A daemon running in this event loop, for tests, drills and benchmarks: yields once its API is up."""
    daemon = Daemon(config, clock=clock, handle_signals=False, freeze_startup_heap=False, sim=sim)
    task = asyncio.create_task(daemon.run(), name="daemon")
    ready = asyncio.create_task(daemon.ready.wait())
    done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        task.result()
    try:
        yield daemon
    finally:
        daemon.stop()
        await task
