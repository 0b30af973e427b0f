"""Inference off the event loop: one worker thread, one batch in flight, stale inputs dropped.

The predictor owns a daemon thread that runs every forward pass (torch pinned to one
thread there: two threads on two cores made p99 latency jump several-fold). The event loop
only hands windows over and awaits a future, with a timeout; a model that hangs or crashes
costs the loop nothing, and yields no signals — never a guess.

* One batch in flight: a call that finds the worker busy waits (up to the timeout) for it.
* Stale inputs dropped: while a call waits, a newer call supersedes it; the older returns {}.
* A batch that outlives `model.inference_timeout_seconds` is abandoned: {} is returned, the
  timeout is counted and logged, and the next call waits for the worker to come back.
* Past `model.max_age_days`, or after `pause()`, predict returns {} and `health()` says why.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog

from guard.clock import Clock
from guard.config import ModelSection
from guard.domain import Signal
from guard.features import FeatureWindow
from guard.model.artifact import LoadedModel
from guard.model.health import ModelHealth
from guard.model.runner import ModelRunner

log = structlog.get_logger(__name__)

_STOP = object()


class _Worker:
    """One daemon thread running jobs in order. A hung job never blocks interpreter exit."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import torch

        torch.set_num_threads(1)  # one thread: p99 latency, and the other core stays with the loop
        while True:
            item = self._jobs.get()
            if item is _STOP:
                return
            fn, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as e:  # delivered to the awaiting caller, not swallowed
                future.set_exception(e)

    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((fn, future))
        return future

    def close(self) -> None:
        self._jobs.put(_STOP)


class Predictor:
    """Turns feature windows into Signals on a worker thread.

    Args:
        model: a loaded, verified model.
        config: the model section (timeout, novelty threshold, maximum age).
        clock: measures the model's age.
        explain_min_confidence: compute the "why" only for sides at least this confident
            (pass `proposals.min_confidence`: nothing below it is ever shown as a proposal).
    """

    def __init__(
        self,
        model: LoadedModel,
        config: ModelSection,
        clock: Clock,
        *,
        explain_min_confidence: float = 0.0,
    ) -> None:
        self.model = model
        self._config = config
        self._clock = clock
        self._explain_min_confidence = explain_min_confidence
        self._runner = ModelRunner(model)
        self._worker = _Worker(f"guard-model-{model.model_id}")
        self._inflight: asyncio.Future[list[Signal]] | None = None
        self._ticket = 0
        self._paused_reason = ""
        self._last_latency_ms: float | None = None
        self._inferences = 0
        self._timeouts = 0
        self._errors = 0
        self._dropped = 0
        self._last_error = ""
        self._last_novelty: float | None = None
        self._closed = False
        self._expiry_logged = False
        self._hang_until = 0.0

    @property
    def runner(self) -> ModelRunner:
        """The synchronous runner (for replay on the caller's own thread, never on the loop)."""
        return self._runner

    async def __aenter__(self) -> Predictor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker once its current job ends (a hung job is left to die with the process)."""
        if not self._closed:
            self._closed = True
            self._worker.close()

    def hang_for_drill(self, seconds: float) -> None:
        """Make inference block its worker thread for `seconds` from now: the model-hang drill.

        The forward pass itself is untouched; the worker sleeps before it, as a stuck model
        would hold the thread. The event loop, the timeout and the kill switch see a real hang.
        """
        self._hang_until = time.monotonic() + seconds
        log.warning("model.drill_hang", model_id=self.model.model_id, seconds=seconds)

    def _infer(self, *args: Any, **kwargs: Any) -> list[Signal]:
        delay = self._hang_until - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # on the worker thread: this is the hang the drill asked for
        return self._runner.signals(*args, **kwargs)

    # --- state ---------------------------------------------------------------------------

    def pause(self, reason: str) -> None:
        """Stop proposing until `resume()`; health shows the reason."""
        if self._paused_reason != reason:
            log.warning("model.paused", model_id=self.model.model_id, reason=reason)
        self._paused_reason = reason or "paused"

    def resume(self) -> None:
        """Propose again after a pause."""
        if self._paused_reason:
            log.info("model.resumed", model_id=self.model.model_id)
        self._paused_reason = ""

    def age_days(self) -> float:
        return self._runner.age_days(self._clock.now_ms())

    def expired_reason(self) -> str:
        """Why the model is too old to propose, or ""."""
        age = self.age_days()
        limit = self._config.max_age_days
        if age <= limit:
            return ""
        end = datetime.fromtimestamp(self.model.training_end_ms / 1000, UTC).strftime("%Y-%m-%d")
        return (
            f"model expired: its data ends {end}, {age:.1f} days ago, past model.max_age_days = {limit:g}; "
            "retrain it (its card says how) or raise the limit"
        )

    def health(self) -> ModelHealth:
        """A snapshot of the model's state and the predictor's counters."""
        expired = self.expired_reason()
        return ModelHealth(
            model_id=self.model.model_id,
            model_hash=self.model.model_hash,
            age_days=round(self.age_days(), 3),
            expired=bool(expired),
            expired_reason=expired,
            paused=bool(self._paused_reason),
            paused_reason=self._paused_reason,
            busy=self._inflight is not None and not self._inflight.done(),
            last_latency_ms=self._last_latency_ms,
            inferences=self._inferences,
            timeouts=self._timeouts,
            errors=self._errors,
            dropped=self._dropped,
            last_error=self._last_error,
            last_novelty=self._last_novelty,
            synthetic=self.model.synthetic,
        )

    # --- inference -----------------------------------------------------------------------

    async def predict(self, windows: Mapping[str, FeatureWindow]) -> dict[str, Signal]:
        """Signals for the given windows (one per symbol), or {} when the model cannot answer.

        {} means: expired, paused, superseded by a newer call, timed out, or the model failed.
        `health()` says which.
        """
        self._ticket += 1
        ticket = self._ticket
        if not windows or self._closed:
            return {}
        expired = self.expired_reason()
        if expired and not self._expiry_logged:
            self._expiry_logged = True
            log.warning("model.expired", model_id=self.model.model_id, reason=expired)
        if expired or self._paused_reason:
            return {}
        wrong = sorted(s for s, w in windows.items() if w.timeframe != self.model.timeframe)
        if wrong:
            # a window of another timeframe would be read as if it were this model's: refuse it
            self._last_error = (
                f"windows for {', '.join(wrong)} are not {self.model.timeframe} bars: not given to the model"
            )
            log.error("model.wrong_timeframe", model_id=self.model.model_id, symbols=wrong)
            windows = {s: w for s, w in windows.items() if s not in wrong}
            if not windows:
                return {}
        timeout = self._config.inference_timeout_seconds
        busy = self._inflight
        if busy is not None and not busy.done():
            # wait for it, not on it: its result and failure belong to its own caller
            done, _ = await asyncio.wait({busy}, timeout=timeout)
            if not done:
                self._last_error = f"model still busy with an earlier batch after {timeout:g} s"
                log.warning("model.busy", model_id=self.model.model_id, waited_seconds=timeout)
                if ticket == self._ticket:
                    self._timeouts += 1
                else:
                    self._dropped += 1
                return {}
        if ticket != self._ticket:
            self._dropped += 1
            return {}
        batch = list(windows.values())
        job = partial(
            self._infer,
            batch,
            now_ms=self._clock.now_ms(),
            novelty_threshold=self._config.novelty_threshold,
            explain_min_confidence=self._explain_min_confidence,
        )
        started = time.perf_counter()
        future = asyncio.wrap_future(self._worker.submit(job))
        future.add_done_callback(_consume)
        self._inflight = future
        try:
            signals = await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            self._timeouts += 1
            self._last_error = f"inference timed out after {timeout:g} s ({len(batch)} symbols): no signals"
            log.error("model.timeout", model_id=self.model.model_id, timeout_seconds=timeout, symbols=len(batch))
            return {}
        except Exception as e:  # a crashing model means no signals, never a crash of the daemon
            self._errors += 1
            self._last_error = f"inference failed: {type(e).__name__}: {e}"
            log.error("model.error", model_id=self.model.model_id, error=repr(e))
            return {}
        self._last_latency_ms = (time.perf_counter() - started) * 1000
        self._inferences += 1
        self._last_novelty = max(s.novelty for s in signals)
        return {s.symbol: s for s in signals}


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned batch's exception so asyncio does not warn about it at exit."""
    if not future.cancelled():
        future.exception()
