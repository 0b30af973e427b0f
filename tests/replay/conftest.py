"""Shared replay fixtures: a short simulated history with flash crashes, and the shipped model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from guard.logs import configure
from guard.model.artifact import LoadedModel, load_model
from guard.model.inference import SERIES_CHUNK
from guard.replay.history import SymbolHistory
from guard.replay.leverage import crash_history
from guard.sim.process import PriceProcess

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def model() -> LoadedModel:
    """The shipped default model."""
    return load_model(ROOT / "models" / "default")


@pytest.fixture(scope="session")
def crashes() -> list[SymbolHistory]:
    """Three days of three symbols in the simulator's trend scenario, with a flash crash on days 2 and 3."""
    return crash_history(3, seed=21)


@pytest.fixture(scope="session")
def long_trend() -> SymbolHistory:
    """1-minute bars of BTC in the simulator's trend scenario over three chunks of the model's pass, the last one
    short: a replay of them proposes over a thousand times, and its journal goes to its writer process."""
    process = PriceProcess(["BTC/USDT:USDT"], 1_767_225_600_000, seed=5, scenario="trend")
    block = process.advance(2 * SERIES_CHUNK + 5_000)
    return SymbolHistory("BTC/USDT:USDT", "1m", block.open_time, *process.bars_of(block, 0))


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    """Warnings and above only: a replay logs every proposal at info, thousands of lines."""
    configure(level="warning", fmt="json")
    yield
    structlog.reset_defaults()
