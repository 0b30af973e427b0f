"""Spec files beside history: exact round trips, strict reading, and which spec a replay gets."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from guard.domain import MarketKind, MarketSpec
from guard.errors import BadInput
from guard.markets import (
    SpecRecord,
    builtin_spec,
    builtin_tiers,
    default_spec,
    read_specs,
    resolve_specs,
    spec_path,
    write_specs,
)

XRP = "XRP/USDT:USDT"


def _xrp(tick: str = "0.0001") -> SpecRecord:
    spec = MarketSpec(
        symbol=XRP,
        base="XRP",
        quote="USDT",
        kind=MarketKind.LINEAR,
        tick_size=Decimal(tick),
        step_size=Decimal("0.1"),
        min_qty=Decimal("0.1"),
        min_notional=Decimal(5),
        maker_fee=Decimal("0.0002"),
        taker_fee=Decimal("0.0005"),
        max_leverage=Decimal(50),
        tiers=builtin_tiers(XRP),
        contract_size=Decimal(1),
    )
    return SpecRecord(spec=spec, source="a test", settle="USDT", guesses=("tick guessed",))


def test_spec_file_round_trip_exact(tmp_path: Path) -> None:
    """A spec file reads back the very records written: decimals exact, the last tier's infinite cap kept."""
    eth_btc = SpecRecord(
        spec=MarketSpec(
            symbol="ETH/BTC",
            base="ETH",
            quote="BTC",
            kind=MarketKind.SPOT,
            tick_size=Decimal("0.00001"),
            step_size=Decimal("0.0001"),
            min_qty=Decimal("0.0001"),
            min_notional=Decimal("0.0001"),
            maker_fee=Decimal("-0.0001"),
            taker_fee=Decimal("0.001"),
            max_leverage=Decimal(1),
        ),
        source="binance via ccxt",
    )
    path = write_specs(tmp_path / "x.csv.spec.json", [_xrp(), eth_btc])
    assert read_specs(path) == {XRP: _xrp(), "ETH/BTC": eth_btc}
    text = path.read_text()
    assert '"tick_size": "0.00001"' in text and '"cap": "Infinity"' in text and "E-" not in text


def test_spec_path_beside_history() -> None:
    """The spec of `dir/btc.csv` is `dir/btc.csv.spec.json` (CSV and Parquet alike)."""
    assert spec_path("d/btc.csv") == Path("d/btc.csv.spec.json")
    assert spec_path("d/btc.parquet") == Path("d/btc.parquet.spec.json")


def _market(tmp: Path) -> dict[str, Any]:
    """The JSON of a good market, to spoil."""
    return json.loads(write_specs(tmp / "good.spec.json", [_xrp()]).read_text())["markets"][0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tick_sise": "0.1"}, "unknown key.*tick_sise"),
        ({"tick_size": "-0.1"}, r"tick_size: '-0.1': must be > 0"),
        ({"tick_size": "NaN"}, "not a finite number"),
        ({"tick_size": [1]}, "decimal number as a string"),
        ({"kind": "inverse"}, "not one of spot, linear"),
        ({"symbol": "XRP/USDT"}, "does not match"),
        ({"taker_fee": "5"}, "not a fee rate"),
        ({"tick_size": "1e-30"}, "must be between"),
        ({"step_size": "1e300"}, "must be between"),
        ({"max_leverage": "1e9"}, "at most 1000"),
        ({"max_leverage": "0.5"}, "at least 1"),
        ({"settle": None}, "needs its settlement currency"),
        ({"kind": "spot", "symbol": "XRP/USDT", "settle": None}, "spot market has no leverage"),
    ],
)
def test_spec_file_bad_field_refused_with_path(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    """Every impossible or unknown field is refused, naming the file, the field's path and what is allowed."""
    market = {**_market(tmp_path), **change}
    if "tick_sise" in change:
        del market["tick_size"]
    path = tmp_path / "bad.spec.json"
    path.write_text(json.dumps({"format": "guard.market-specs/1", "markets": [market]}))
    with pytest.raises(BadInput, match=message) as caught:
        read_specs(path)
    assert str(path) in str(caught.value) and "$.markets[0]" in str(caught.value)


def test_spec_file_tiers_must_chain(tmp_path: Path) -> None:
    """Tiers start at 0 and each starts at the previous one's cap."""
    market = _market(tmp_path)
    market["tiers"][1]["floor"] = "30000"
    path = tmp_path / "bad.spec.json"
    path.write_text(json.dumps({"format": "guard.market-specs/1", "markets": [market]}))
    with pytest.raises(BadInput, match=r"tiers\[1\]\.floor"):
        read_specs(path)


@pytest.mark.parametrize("text", ["", "{", "[]", '{"format": "other"}', '{"format": "guard.market-specs/1"}'])
def test_spec_file_not_a_spec_refused(tmp_path: Path, text: str) -> None:
    """Damaged or foreign files are refused with a clear message, never a traceback."""
    path = tmp_path / "x.spec.json"
    path.write_text(text)
    with pytest.raises(BadInput, match=str(path)):
        read_specs(path)


def test_builtin_only_for_symbols_it_describes() -> None:
    """guard's built-in spec covers BTC/ETH/SOL USDT perpetuals and spot pairs, and nothing else: ETH/BTC does not
    inherit ETH/USDT's tick, and an altcoin gets no invented tick."""
    assert builtin_spec("BTC/USDT:USDT").tick_size == Decimal("0.1")  # type: ignore[union-attr]
    assert builtin_spec("ETH/USDT").kind is MarketKind.SPOT  # type: ignore[union-attr]
    for symbol in ("ETH/BTC", "XRP/USDT:USDT", "ETH/USDC:USDC", "BTC/USDT:BTC", "DOGE/USDT"):
        assert builtin_spec(symbol) is None
        with pytest.raises(BadInput, match="no built-in market spec"):
            default_spec(symbol)
    sol = default_spec("SOL/USDT:USDT")
    assert sol.max_leverage == sol.tiers[0].max_leverage  # the cap the tiers allow, not a made-up 125


def test_resolve_specs_given_then_saved_then_builtin(tmp_path: Path) -> None:
    """A spec file passed wins over the one beside the history, which wins over guard's built-in spec."""
    history = tmp_path / "xrp.csv"
    write_specs(spec_path(history), [_xrp("0.0001")])
    given = write_specs(tmp_path / "given.spec.json", [_xrp("0.001")])
    btc = "BTC/USDT:USDT"
    saved = resolve_specs([XRP, btc], [history])
    assert saved[XRP].spec.tick_size == Decimal("0.0001") and saved[btc].source == "guard's built-in spec"
    assert resolve_specs([XRP], [history], [given])[XRP].spec.tick_size == Decimal("0.001")


def test_resolve_specs_missing_refused_saying_what_to_pass(tmp_path: Path) -> None:
    """A symbol with no spec given, none saved and no built-in one is refused, naming the ways to give one."""
    with pytest.raises(BadInput, match="no market spec for ETH/BTC") as caught:
        resolve_specs(["ETH/BTC", "BTC/USDT:USDT"], [tmp_path / "eth_btc.csv"])
    for way in ("guard history fetch", "--tick T --step S", "--spec FILE"):
        assert way in str(caught.value)


def test_resolve_specs_two_saved_specs_disagree_refused(tmp_path: Path) -> None:
    """Two history files of one symbol with different saved specs are refused unless a spec is chosen."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_specs(spec_path(a), [_xrp("0.0001")])
    write_specs(spec_path(b), [_xrp("0.001")])
    with pytest.raises(BadInput, match="different specs"):
        resolve_specs([XRP], [a, b])
    chosen = write_specs(tmp_path / "c.spec.json", [_xrp("0.01")])
    assert resolve_specs([XRP], [a, b], [chosen])[XRP].spec.tick_size == Decimal("0.01")
