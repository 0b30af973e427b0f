"""Replays of the markets a quant would try, on files the tests write: a BTC-quoted spot token, a low-priced alt
perpetual, ETH/BTC on 5m bars and a plain BTC/USDT perpetual. In each, every price is on the market's tick,
money is counted in the account's USDT, and every proposal's end is accounted for."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal as D
from pathlib import Path

import pytest
from msgspec.structs import replace

from guard.config import Config, config_from_dict
from guard.domain import ZERO, Bar, MarketKind, MarketSpec
from guard.errors import BadInput
from guard.events import ProposalQueued
from guard.features import build_series
from guard.feed.history import write_bars
from guard.journal.chain import read_entries
from guard.markets import SpecRecord, spec_path, write_specs
from guard.model.artifact import save_artifact
from guard.model.synthetic import toy_bars
from guard.model.training import train
from guard.replay.engine import ReplayOptions
from guard.replay.fates import Fate
from guard.replay.operator import OperatorPolicy, ScriptedOperator
from guard.replay.result import ReplayResult
from guard.replay.run import run_replay
from guard.sim.process import generate_history
from tests.model.toy import TINY
from tests.replay.test_cli import _guard

ROOT = Path(__file__).resolve().parents[2]
MODEL = str(ROOT / "models" / "default")
T0 = 1_767_225_600_000
APPROVE_ALL = ReplayOptions(operator=ScriptedOperator(OperatorPolicy.APPROVE_ALL))


def _spec(symbol: str, tick: str, step: str, min_notional: str = "0") -> SpecRecord:
    pair, _, settle = symbol.partition(":")
    base, quote = pair.split("/")
    linear = bool(settle)
    return SpecRecord(
        spec=MarketSpec(
            symbol=symbol,
            base=base,
            quote=quote,
            kind=MarketKind.LINEAR if linear else MarketKind.SPOT,
            tick_size=D(tick),
            step_size=D(step),
            min_qty=D(step),
            min_notional=D(min_notional),
            maker_fee=D("0.0002"),
            taker_fee=D("0.0005"),
            max_leverage=D(20) if linear else D(1),
            tiers=(),
        ),
        source="the test",
        settle=settle or None,
    )


def _scaled(bars: Sequence[Bar], symbol: str, scale: float) -> list[Bar]:
    return [
        replace(b, symbol=symbol, open=b.open * scale, high=b.high * scale, low=b.low * scale, close=b.close * scale)
        for b in bars
    ]


def _history(path: Path, bars: Sequence[Bar], spec: SpecRecord | None = None) -> str:
    write_bars(path, list(bars))
    if spec is not None:
        write_specs(spec_path(path), [spec])
    return str(path)


def _btc_usdt(path: Path, n: int, timeframe: str = "1m") -> str:
    """BTC/USDT bars to convert BTC into USDT: the simulator's BTC, over the same minutes."""
    bars = generate_history(["BTC/USDT:USDT"], T0, n, seed=5)["BTC/USDT:USDT"]
    return _history(path, [replace(b, symbol="BTC/USDT") for b in bars])


@dataclass(frozen=True, slots=True)
class Replayed:
    result: ReplayResult
    queued: list[ProposalQueued]


def _replay(
    tmp: Path, data: list[str], model: str = MODEL, config: Config | None = None, converts: Sequence[str] = ()
) -> Replayed:
    result = run_replay(config or Config(), data, model, APPROVE_ALL, tmp / "out", converts=converts)
    queued = [e.event for e in read_entries(tmp / "out" / "journal.db") if isinstance(e.event, ProposalQueued)]
    return Replayed(result, queued)


def _holds(r: Replayed, tick: D) -> None:
    """Every price on the tick, money in USDT, and the fates adding up to the proposals made."""
    result = r.result
    assert result.violations == () and r.queued
    for e in r.queued:
        p = e.proposal
        for x in (p.price, p.stop, p.take_profit, p.liquidation_price):
            assert x is None or x % tick == 0, (x, tick)
    assert result.currency == "USDT" and result.starting_balance == D(10_000)
    assert abs(float(result.equity[0]) - 10_000) < 500  # the curve is in USDT from its first bar
    fates = result.fates
    assert fates is not None
    assert sum(fates.counts().values()) == len(fates.ends) == result.stats.proposals + result.stats.refused
    assert fates.queued == len(r.queued)


def test_plain_btc_usdt_perpetual(tmp_path: Path) -> None:
    """BTC/USDT:USDT with guard's built-in spec (tick 0.1): USDT money, no conversion needed."""
    bars = generate_history(["BTC/USDT:USDT"], T0, 1_500, scenario="trend", seed=31)["BTC/USDT:USDT"]
    r = _replay(tmp_path, [_history(tmp_path / "btc.csv", bars)])
    _holds(r, D("0.1"))
    assert r.result.money_note == ""


def test_low_priced_alt_perpetual(tmp_path: Path) -> None:
    """A perpetual at 0.002 with the venue's tick 0.000001: prices, stops and take-profits on that tick."""
    bars = generate_history(["XRP/USDT:USDT"], T0, 1_500, scenario="trend", seed=31)["XRP/USDT:USDT"]
    scale = 0.002 / bars[0].close
    data = _history(
        tmp_path / "tkn.csv", _scaled(bars, "TKN/USDT:USDT", scale), _spec("TKN/USDT:USDT", "0.000001", "1")
    )
    r = _replay(tmp_path, [data])
    _holds(r, D("0.000001"))
    assert all(abs(e.proposal.stop - e.proposal.price) > 2 * D("0.000001") for e in r.queued if e.proposal.stop)


def test_btc_quoted_spot_token_without_a_conversion_is_refused_saying_how(tmp_path: Path) -> None:
    """A pair that counts money in BTC, with no BTC/USDT series given, is refused before it runs, naming --convert."""
    bars = generate_history(["XRP/USDT:USDT"], T0, 300, seed=31)["XRP/USDT:USDT"]
    data = _history(
        tmp_path / "tkn.csv", _scaled(bars, "TKN/BTC", 5e-5 / bars[0].close), _spec("TKN/BTC", "0.00000001", "1")
    )
    with pytest.raises(BadInput, match=r"counts money in BTC.*--convert BTC/USDT=FILE"):
        run_replay(Config(), [data], MODEL, APPROVE_ALL, tmp_path / "out")


def _spot_token(tmp: Path, seed: int) -> Replayed:
    bars = generate_history(["XRP/USDT:USDT"], T0, 1_500, scenario="trend", seed=seed)["XRP/USDT:USDT"]
    data = _history(
        tmp / "tkn.csv", _scaled(bars, "TKN/BTC", 5e-5 / bars[0].close), _spec("TKN/BTC", "0.00000001", "1")
    )
    btc = _btc_usdt(tmp / "btc-usdt.csv", 1_500)
    options = replace_options(leverage=D(10))
    result = run_replay(Config(), [data], MODEL, options, tmp / "out", converts=[f"BTC/USDT={btc}"])
    queued = [e.event for e in read_entries(tmp / "out" / "journal.db") if isinstance(e.event, ProposalQueued)]
    return Replayed(result, queued)


def test_btc_quoted_spot_token(tmp_path: Path) -> None:
    """A spot token at 0.00005 BTC (tick 1e-8) converted through BTC/USDT: every order within the 25,000 USDT
    limit counted in USDT, at 1x whatever --leverage says (and the report says it does not apply)."""
    r = _spot_token(tmp_path, seed=31)
    _holds(r, D("0.00000001"))
    result = r.result
    assert "1 BTC = 100,015.80 USDT at the first bar" in result.money_note  # the first BTC/USDT bar's open
    assert result.leverage.startswith("1 (spot: --leverage 10 does not apply")
    rate = D("100015.8")
    for e in r.queued:
        assert e.proposal.notional * rate <= D(25_000) * D("1.001") and e.proposal.leverage == 1
    assert result.fates is not None and result.fates.counts().get(Fate.TAKE_PROFIT.value, 0) > 0


def test_btc_quoted_spot_token_sell_without_holdings_is_refused_by_the_risk_check(tmp_path: Path) -> None:
    """On a falling spot token the model says sell with nothing held: the spot check blocks it when queued, and
    the report names that check as the proposal's end."""
    r = _spot_token(tmp_path, seed=4)
    _holds(r, D("0.00000001"))
    fates = r.result.fates
    assert fates is not None
    assert fates.details()[Fate.REFUSED.value] == {"risk check: spot_holdings": len(r.queued)}
    assert all(
        any(c.name == "spot_holdings" and c.verdict.value == "block" for c in e.proposal.checks) for e in r.queued
    )


def replace_options(**changes: object) -> ReplayOptions:
    from dataclasses import replace as dc_replace

    return dc_replace(APPROVE_ALL, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def model_5m(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny model trained on 5m bars of a toy market (a few seconds)."""
    series = tuple(
        build_series(toy_bars(f"T{i}/USDT:USDT", 4000, seed=i, timeframe="5m", drift_share=0.5, drift_persistence=0.97))
        for i in range(2)
    )
    path = tmp_path_factory.mktemp("m5") / "toy5m"
    save_artifact(
        train(series, TINY),
        path,
        name="toy5m",
        data_source={"description": "toy market (tests)", "synthetic": True, "files": []},
        command="pytest tests/replay",
    )
    return str(path)


def test_eth_btc_5m(tmp_path: Path, model_5m: str) -> None:
    """ETH/BTC spot on 5m bars (tick 0.00001), converted through 5m BTC/USDT bars."""
    bars = generate_history(["ETH/USDT:USDT"], T0, 3_000, timeframe="5m", scenario="trend", seed=8)["ETH/USDT:USDT"]
    data = _history(
        tmp_path / "ETH_BTC-5m.csv",
        _scaled(bars, "ETH/BTC", 0.05 / bars[0].close),
        _spec("ETH/BTC", "0.00001", "0.0001"),
    )
    btc = generate_history(["BTC/USDT:USDT"], T0, 3_000, timeframe="5m", seed=5)["BTC/USDT:USDT"]
    conv = _history(tmp_path / "btc-usdt-5m.csv", [replace(b, symbol="BTC/USDT") for b in btc])
    config = config_from_dict(
        {"proposals": {"min_confidence": 0.4, "full_size_confidence": 0.6}, "risk": {"min_confidence": 0.4}}
    )
    r = _replay(tmp_path, [data], model_5m, config, converts=[f"BTC/USDT={conv}"])
    _holds(r, D("0.00001"))
    assert r.result.timeframe == "5m" and ZERO < r.result.starting_balance


def test_cli_convert_and_spot_leverage(guard_home: Path, tmp_path: Path) -> None:
    """`guard replay` on a BTC-quoted spot token: exit 2 naming --convert without it; with it, exit 0, a JSON
    report in USDT with every proposal's end, and a note on stderr that --leverage does not apply to spot."""
    bars = generate_history(["XRP/USDT:USDT"], T0, 1_500, scenario="trend", seed=31)["XRP/USDT:USDT"]
    data = _history(
        tmp_path / "tkn.csv", _scaled(bars, "TKN/BTC", 5e-5 / bars[0].close), _spec("TKN/BTC", "0.00000001", "1")
    )
    btc = _btc_usdt(tmp_path / "btc-usdt.csv", 1_500)
    refused = _guard(guard_home, "replay", data, "--operator", "never", "--model", MODEL, "--out", str(tmp_path / "a"))
    assert refused.returncode == 2 and "--convert BTC/USDT=FILE" in refused.stderr
    done = _guard(
        guard_home,
        "replay",
        data,
        "--operator",
        "approve-all",
        "--model",
        MODEL,
        "--leverage",
        "5",
        "--convert",
        f"BTC/USDT={btc}",
        "--out",
        str(tmp_path / "b"),
        "--json",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--leverage 5 does not apply to TKN/BTC: spot orders are 1x" in done.stderr
    report = json.loads(done.stdout)
    assert report["currency"] == "USDT" and report["starting_balance"] == 10_000
    assert sum(report["fates"]["counts"].values()) == len(report["fates"]["proposals"]) == report["proposals"]
