"""End to end on real prices: backtesting.py's shipped EURUSD (hourly, 2017–2018) and GOOG (daily, 2004–2013)
imported with guard's importer and replayed: as a low-priced perpetual on its 0.00001 tick, as a spot pair that
counts money in USD (refused without a conversion, converted with one), and as a spot stock. The model is a
tiny one trained on synthetic bars of the same timeframe, so the report must say it does not fit."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
from msgspec.structs import replace

from guard.config import Config, config_from_dict
from guard.domain import MarketKind
from guard.errors import BadInput
from guard.events import ProposalQueued
from guard.features import build_series
from guard.feed.history import write_bars
from guard.feed.importer import ImportOptions, import_plain_csv
from guard.journal.chain import read_entries
from guard.markets import spec_path, write_specs
from guard.model.artifact import save_artifact
from guard.model.synthetic import toy_bars
from guard.model.training import train
from guard.replay.engine import ReplayOptions
from guard.replay.fates import Fate
from guard.replay.operator import OperatorPolicy, ScriptedOperator
from guard.replay.report import markdown
from guard.replay.result import ReplayResult
from guard.replay.run import run_replay
from tests.model.toy import TINY

backtesting = pytest.importorskip("backtesting")
SERIES = Path(backtesting.__file__).parent / "test"
APPROVE_ALL = ReplayOptions(operator=ScriptedOperator(OperatorPolicy.APPROVE_ALL))
EAGER = config_from_dict(
    {
        "proposals": {"min_confidence": 0.4, "full_size_confidence": 0.6},
        "risk": {"min_confidence": 0.4},
        "model": {"max_age_days": 100_000},
    }
)
"""A tiny model is rarely confident: take weaker calls, so there are proposals to follow; bars from 2017 are
older than a model trained on 2026's toy bars only in the other direction, which the banner reports."""


def _model(tmp: Path, timeframe: str) -> str:
    series = tuple(
        build_series(
            toy_bars(
                f"T{i}/USDT:USDT", 4000, seed=i, timeframe=timeframe, drift_share=0.5, drift_persistence=0.97, price=1.0
            )
        )
        for i in range(2)
    )
    path = tmp / f"toy-{timeframe}"
    save_artifact(
        train(series, TINY),
        path,
        name=f"toy-{timeframe}",
        data_source={"description": "toy market (tests)", "synthetic": True, "files": []},
        command="pytest tests/replay/test_real_series.py",
    )
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Tiny models on toy 1h and 1d bars (a few seconds each)."""
    tmp = tmp_path_factory.mktemp("models")
    return {tf: _model(tmp, tf) for tf in ("1h", "1d")}


def _import(tmp: Path, name: str, out: str, **options: object) -> str:
    imported = import_plain_csv(SERIES / name, options=ImportOptions(**options))  # type: ignore[arg-type]
    path = tmp / out
    write_bars(path, imported.bars)
    write_specs(spec_path(path), [imported.spec])
    return str(path)


def _check(result: ReplayResult, journal: Path, tick: D) -> list[ProposalQueued]:
    queued = [e.event for e in read_entries(journal) if isinstance(e.event, ProposalQueued)]
    assert result.violations == () and queued
    for e in queued:
        for x in (e.proposal.price, e.proposal.stop, e.proposal.take_profit, e.proposal.liquidation_price):
            assert x is None or x % tick == 0
    assert result.currency == "USDT" and result.starting_balance == D(10_000)
    assert result.fates is not None
    made = result.stats.proposals + result.stats.refused
    assert sum(result.fates.counts().values()) == len(result.fates.ends) == made
    text = markdown(result)
    assert "trained on synthetic data" in text and "it never saw" in text
    return queued


def test_eurusd_hourly_as_a_low_priced_perpetual(tmp_path: Path, models: dict[str, str]) -> None:
    """EURUSD's real hours as EUR/USDT:USDT on a 0.00001 tick: as imported, its weekends leave no stretch long
    enough for a window and the report says the model scored none; with the gaps filled, every price on the tick."""
    raw = _import(tmp_path, "EURUSD.csv", "eur-raw.parquet", symbol="EUR/USDT:USDT", tick=D("0.00001"), step=D(1))
    unscored = run_replay(EAGER, [raw], models["1h"], APPROVE_ALL, tmp_path / "raw")
    assert unscored.outlook.scored_bars == 0 and "it could score only 0% of the bars" in markdown(unscored)
    data = _import(
        tmp_path, "EURUSD.csv", "eur.parquet", symbol="EUR/USDT:USDT", tick=D("0.00001"), step=D(1), fill_gaps=True
    )
    result = run_replay(EAGER, [data], models["1h"], APPROVE_ALL, tmp_path / "out")
    _check(result, tmp_path / "out" / "journal.db", D("0.00001"))
    assert "comes after every one of these bars" in markdown(result)


def test_eurusd_as_a_pair_counting_money_in_usd_needs_a_conversion(tmp_path: Path, models: dict[str, str]) -> None:
    """EUR/USD spot counts money in USD: refused without USD's price in USDT; replayed with one (here at par,
    written beside it), money in USDT and sells without holdings refused by the spot check."""
    data = _import(
        tmp_path,
        "EURUSD.csv",
        "eur-usd.parquet",
        symbol="EUR/USD",
        kind=MarketKind.SPOT,
        tick=D("0.00001"),
        step=D(1),
        fill_gaps=True,
    )
    with pytest.raises(BadInput, match=r"counts money in USD.*--convert USD/USDT=FILE"):
        run_replay(EAGER, [data], models["1h"], APPROVE_ALL, tmp_path / "refused")
    imported = import_plain_csv(SERIES / "EURUSD.csv", options=ImportOptions(symbol="USD/USDT", kind=MarketKind.SPOT))
    par = tmp_path / "usd-usdt.parquet"
    write_bars(par, [replace(b, open=1.0, high=1.0, low=1.0, close=1.0) for b in imported.bars])
    result = run_replay(EAGER, [data], models["1h"], APPROVE_ALL, tmp_path / "out", converts=[f"USD/USDT={par}"])
    _check(result, tmp_path / "out" / "journal.db", D("0.00001"))
    assert "counts money in USD, converted with USD/USDT" in result.money_note
    assert result.fates is not None
    refused = result.fates.details().get(Fate.REFUSED.value, {})
    sells = [e for e in result.fates.ends if e.side.value == "sell"]
    assert not sells or refused.get("risk check: spot_holdings", 0) > 0


def test_goog_daily_as_a_spot_stock(tmp_path: Path, models: dict[str, str]) -> None:
    """GOOG's real days as GOOG/USDT spot (weekends filled flat, never traded on): on its 0.01 tick, in USDT."""
    data = _import(
        tmp_path,
        "GOOG.csv",
        "goog.parquet",
        symbol="GOOG/USDT",
        kind=MarketKind.SPOT,
        tick=D("0.01"),
        step=D(1),
        fill_gaps=True,
    )
    result = run_replay(EAGER, [data], models["1d"], APPROVE_ALL, tmp_path / "out")
    _check(result, tmp_path / "out" / "journal.db", D("0.01"))
    assert Config().paper.starting_balance == result.starting_balance
