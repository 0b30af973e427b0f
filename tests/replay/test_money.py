"""Money in the account's currency: the --convert option, and the refusals that say what is missing."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
from msgspec.structs import replace

from guard.config import Config
from guard.errors import BadInput
from guard.feed.history import write_bars
from guard.markets import SpecRecord, default_spec
from guard.replay.money import desk_config, load_conversion, parse_convert, plan_conversion
from guard.sim.process import generate_history

T0 = 1_767_225_600_000
MIN = 60_000
ETH_BTC = SpecRecord(
    spec=replace(default_spec("ETH/USDT"), symbol="ETH/BTC", quote="BTC", tick_size=D("0.00001")),
    source="test",
)
BTC_PERP = SpecRecord(spec=default_spec("BTC/USDT:USDT"), source="test", settle="USDT")


def _btc_usdt(tmp: Path, n: int = 100, start: int = T0) -> str:
    bars = generate_history(["BTC/USDT:USDT"], start, n, seed=5)["BTC/USDT:USDT"]
    path = tmp / "btc-usdt.csv"
    write_bars(path, [replace(b, symbol="BTC/USDT") for b in bars])
    return str(path)


@pytest.mark.parametrize("text", ["BTC/USDT", "BTC/USDT=", "=f.csv", "BTC=f.csv", "BTC/EUR=f.csv", "/USDT=f.csv"])
def test_convert_option_refuses_what_is_not_a_pair_into_usdt(text: str) -> None:
    """--convert must be PAIR=FILE with a pair into the account's USDT; anything else says the form."""
    with pytest.raises(BadInput, match="--convert"):
        parse_convert(text)


def test_convert_option_reads_a_pair_and_file() -> None:
    """BTC/USDT=f.csv (or the perpetual's name) is BTC priced in USDT, from f.csv."""
    assert parse_convert("btc/usdt=f.csv") == ("BTC", "USDT", "f.csv")
    assert parse_convert("BTC/USDT:USDT=dir/f=1.csv") == ("BTC", "USDT", "dir/f=1.csv")


def test_usdt_markets_need_no_conversion_and_mixed_currencies_are_refused(tmp_path: Path) -> None:
    """USDT money needs nothing; BTC and USDT money in one replay is refused (one replay keeps one account)."""
    assert plan_conversion({"BTC/USDT:USDT": BTC_PERP}, (), T0, T0 + MIN) is None
    with pytest.raises(BadInput, match="replay them separately"):
        plan_conversion({"ETH/BTC": ETH_BTC, "BTC/USDT:USDT": BTC_PERP}, (), T0, T0 + MIN)


def test_a_conversion_that_does_not_cover_the_replay_is_refused(tmp_path: Path) -> None:
    """A BTC/USDT series starting after the replay's first bar, or ending days before its end, is refused."""
    late = _btc_usdt(tmp_path, start=T0 + 10 * MIN)
    with pytest.raises(BadInput, match="must cover it"):
        load_conversion("BTC", late, T0, T0 + 50 * MIN)
    with pytest.raises(BadInput, match="must cover it"):
        load_conversion("BTC", _btc_usdt(tmp_path, n=100), T0, T0 + 3 * 86_400_000)
    with pytest.raises(BadInput, match="not ETH/USDT alone"):
        load_conversion("ETH", _btc_usdt(tmp_path), T0, T0 + 50 * MIN)


def test_conversion_rates_and_desk_limits(tmp_path: Path) -> None:
    """The rate at a time is the last close at or before it; the desk's money limits are divided by the start rate."""
    conversion = load_conversion("BTC", _btc_usdt(tmp_path), T0, T0 + 50 * MIN)
    assert conversion.rate(T0) == D(str(conversion.first_open))  # before the first close: its open
    assert conversion.rate(T0 + MIN) == D(str(float(conversion.closes[0])))
    assert conversion.rate(T0 + 2 * MIN) == D(str(float(conversion.closes[1])))
    config = desk_config(Config(), D(50_000))
    assert config.risk.max_order_notional == D("0.5") and config.paper.starting_balance == D("0.2")
    assert config.risk.daily_loss_limit == D("0.02")
