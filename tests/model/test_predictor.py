"""The predictor: inference on a worker thread that a slow or broken model cannot block."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import torch

from guard.clock import TestClock
from guard.config import ModelSection
from guard.features import FeatureWindow
from guard.model.artifact import LoadedModel
from guard.model.network import EnsembleTCN
from guard.model.predictor import Predictor
from tests.model.toy import Trained


class HangingNet(EnsembleTCN):
    """The trained network, but every forward pass first waits (up to 60 s) for a release."""

    def __init__(self, base: EnsembleTCN, release: threading.Event, crash: bool = False) -> None:
        super().__init__(**base.init_args())  # type: ignore[arg-type]
        self.load_state_dict(base.state_dict())
        self.set_normalisation(base.norm_mean, base.norm_std)
        self.eval()
        self.release = release
        self.crash = crash

    def forward(self, x: torch.Tensor, *, split_members: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        self.release.wait(60)
        if self.crash:
            raise RuntimeError("the model fell over")
        return super().forward(x, split_members=split_members)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """A release for hanging models, set at teardown so no worker outlives its test by long."""
    event = threading.Event()
    yield event
    event.set()


def _windows(trained: Trained, n: int = 3) -> dict[str, FeatureWindow]:
    out = {}
    for k, series in enumerate(trained.series[:n]):
        window = series.window(len(series) - 1)
        out[f"S{k}/USDT:USDT"] = dataclasses.replace(window, symbol=f"S{k}/USDT:USDT")
    return out


def _model(trained: Trained, release: threading.Event, crash: bool = False) -> LoadedModel:
    return dataclasses.replace(trained.model, net=HangingNet(trained.model.net, release, crash))


async def _wait_until(condition: Callable[[], bool]) -> None:
    """Poll: the worker thread, not the loop, changes what the condition reads."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110  # no loop-side event to wait on
            await asyncio.sleep(0.001)


async def test_predictor_batch_returns_one_signal_per_symbol(trained: Trained) -> None:
    """A batch of windows comes back as one Signal per symbol, with health updated."""
    async with Predictor(trained.model, ModelSection(), TestClock()) as predictor:
        windows = _windows(trained)
        signals = await predictor.predict(windows)
        assert set(signals) == set(windows)
        for symbol, signal in signals.items():
            assert signal.symbol == symbol
            assert signal.timestamp == windows[symbol].timestamp
        health = predictor.health()
        assert health.inferences == 1 and health.timeouts == 0 and health.errors == 0
        assert health.last_latency_ms is not None and health.last_novelty is not None
        assert health.proposing and health.synthetic


async def test_predictor_hung_model_times_out_and_loop_keeps_answering(
    trained: Trained, release: threading.Event
) -> None:
    """A forward pass that hangs for 60 s yields no signals after the timeout; the loop never stalls."""
    config = ModelSection(inference_timeout_seconds=0.3)
    async with Predictor(_model(trained, release), config, TestClock()) as predictor:
        lags: list[float] = []

        async def ticker() -> None:
            while True:
                before = time.perf_counter()
                await asyncio.sleep(0.005)
                lags.append(time.perf_counter() - before - 0.005)

        tick = asyncio.create_task(ticker())
        started = time.perf_counter()
        first = await predictor.predict(_windows(trained))
        elapsed = time.perf_counter() - started
        second = await predictor.predict(_windows(trained))  # the worker is still stuck
        tick.cancel()
        assert first == {} and second == {}
        assert 0.3 <= elapsed < 1.0
        assert max(lags) < 0.05, f"event loop stalled {max(lags) * 1000:.0f} ms"
        health = predictor.health()
        assert health.timeouts == 2 and health.busy
        assert "busy" in health.last_error


async def test_predictor_recovers_after_hung_model_returns(trained: Trained, release: threading.Event) -> None:
    """Once a hung batch finally returns, the next call gets signals again."""
    async with Predictor(_model(trained, release), ModelSection(inference_timeout_seconds=0.1), TestClock()) as p:
        assert await p.predict(_windows(trained)) == {}
        release.set()
        await _wait_until(lambda: not p.health().busy)
        assert len(await p.predict(_windows(trained))) == 3


async def test_predictor_crashing_model_gives_no_signals_and_counts_error(
    trained: Trained, release: threading.Event
) -> None:
    """A model that raises yields {} and an error in health, never an exception in the daemon."""
    release.set()
    async with Predictor(_model(trained, release, crash=True), ModelSection(), TestClock()) as predictor:
        assert await predictor.predict(_windows(trained)) == {}
        health = predictor.health()
        assert health.errors == 1
        assert "the model fell over" in health.last_error


async def test_predictor_newer_request_supersedes_queued_one(trained: Trained, release: threading.Event) -> None:
    """While a batch runs, a queued request is dropped in favour of a newer one."""
    async with Predictor(_model(trained, release), ModelSection(inference_timeout_seconds=10), TestClock()) as p:
        running = asyncio.create_task(p.predict(_windows(trained)))
        await _wait_until(lambda: p.health().busy)
        stale = asyncio.create_task(p.predict(_windows(trained, 2)))
        fresh = asyncio.create_task(p.predict(_windows(trained, 1)))
        await asyncio.sleep(0)  # both reach the wait for the running batch
        release.set()
        assert len(await running) == 3
        assert await stale == {}
        assert list(await fresh) == ["S0/USDT:USDT"]
        assert p.health().dropped == 1


async def test_predictor_expired_model_stops_and_says_why(trained: Trained) -> None:
    """Past model.max_age_days the predictor returns nothing and health names the date and limit."""
    clock = TestClock(trained.model.training_end_ms)
    async with Predictor(trained.model, ModelSection(max_age_days=30), clock) as predictor:
        assert await predictor.predict(_windows(trained))
        clock.advance(31 * 86_400)
        assert await predictor.predict(_windows(trained)) == {}
        health = predictor.health()
        assert health.expired and not health.proposing
        assert "model expired" in health.expired_reason and "max_age_days = 30" in health.expired_reason
        assert health.age_days == pytest.approx(31.0)


async def test_predictor_paused_model_gives_nothing_until_resumed(trained: Trained) -> None:
    """A paused model proposes nothing and says why; resume brings it back."""
    async with Predictor(trained.model, ModelSection(), TestClock()) as predictor:
        predictor.pause("live record below its claim")
        assert await predictor.predict(_windows(trained)) == {}
        assert predictor.health().paused_reason == "live record below its claim"
        predictor.resume()
        assert await predictor.predict(_windows(trained))


async def test_predictor_explains_only_confident_sides(trained: Trained) -> None:
    """The "why" names features for confident sides and is empty below the threshold."""
    async with Predictor(trained.model, ModelSection(), TestClock(), explain_min_confidence=0.0) as p:
        signals = await p.predict(_windows(trained))
    async with Predictor(trained.model, ModelSection(), TestClock(), explain_min_confidence=1.01) as p:
        quiet = await p.predict(_windows(trained))
    for symbol, signal in signals.items():
        if signal.side is not None:
            assert signal.why.startswith(("up: ", "down: "))
        assert quiet[symbol].why == ""


async def test_predictor_refuses_windows_of_another_timeframe(trained: Trained) -> None:
    """Windows built from 5m bars are not fed to a 1m model; health says which were refused."""
    windows = _windows(trained, 2)
    first = next(iter(windows))
    windows[first] = dataclasses.replace(windows[first], timeframe="5m")
    async with Predictor(trained.model, ModelSection(), TestClock()) as predictor:
        signals = await predictor.predict(windows)
        assert first not in signals and len(signals) == 1
        assert "not 1m bars" in predictor.health().last_error
