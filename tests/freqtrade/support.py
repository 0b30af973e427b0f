"""The real freqtrade, in an environment of its own, pointed at guard's simulated exchange, offline.

freqtrade (~770 MB with its own numpy/pandas stack) is not in guard's test extra: `freqtrade_python()`
installs it once into a cached virtual environment keyed by version (`GUARD_FREQTRADE_VENV`, default
~/.cache/guard-freqtrade-venv/VERSION), and makes this checkout's `guard.client` importable there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FREQTRADE_VERSION = "2026.9"
ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 1, 1, tzinfo=UTC)
CANDLES = 96
"""Eight hours of 5m candles."""
TIMERANGE = "20260101-20260101T0800"

_URLS = """
import ccxt, json, sys
url = sys.argv[1]
def rewrite(v):
    if isinstance(v, dict):
        return {k: rewrite(x) for k, x in v.items()}
    if isinstance(v, str) and "://" in v:
        rest = v.split("://", 1)[1]
        return url + (rest[rest.find("/"):] if "/" in rest else "")
    return v
print(json.dumps(rewrite(ccxt.binance().urls["api"])))
"""

_TRADES = """
import json, sys
from pathlib import Path
from freqtrade.data.btanalysis import load_backtest_data
trades = load_backtest_data(Path(sys.argv[1]))
print(json.dumps([{"pair": t["pair"], "amount": t["amount"]} for t in trades.to_dict("records")]))
"""


def freqtrade_python() -> Path:
    """The cached environment's python, with freqtrade installed and this checkout's guard importable."""
    default = Path.home() / ".cache" / "guard-freqtrade-venv" / FREQTRADE_VERSION
    venv = Path(os.environ.get("GUARD_FREQTRADE_VENV") or default)
    python = venv / "bin" / "python"
    if not (venv / "bin" / "freqtrade").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install = [str(python), "-m", "pip", "install", "-q", f"freqtrade=={FREQTRADE_VERSION}", "msgspec>=0.18,<1"]
        subprocess.run(install, check=True, timeout=1800)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # guard.client needs only aiohttp (freqtrade has it) and msgspec: this checkout on the path, no build.
    Path(site, "guard-checkout.pth").write_text(f"{ROOT}\n", encoding="utf-8")
    return python


def user_data(tmp: Path, strategy: str, python: Path, sim_url: str, jumps: dict[str, tuple[float, int]]) -> Path:
    """A freqtrade user directory: the strategy, a config whose exchange is guard's simulator, and 5m candles
    (with the funding and mark data futures backtesting needs) that are flat but for one 2 % jump per pair at
    the given candle: each pair signals one entry, at a known time."""
    user = tmp / "user_data"
    (user / "strategies").mkdir(parents=True)
    (user / "strategies" / "guard_advised.py").write_text(strategy, encoding="utf-8")
    urls = json.loads(subprocess.run([str(python), "-c", _URLS, sim_url], check=True, capture_output=True).stdout)
    # freqtrade's Binance on the simulator's USDⓈ-M API only: it serves no spot or coin-margined markets.
    ccxt_config = {"urls": {"api": urls}, "options": {"fetchMarkets": {"types": ["linear"]}}}
    config: dict[str, Any] = {
        "strategy": "GuardAdvised",
        "trading_mode": "futures",
        "margin_mode": "isolated",
        "stake_currency": "USDT",
        "stake_amount": 200,
        "dry_run": True,
        "dry_run_wallet": 10000,
        "max_open_trades": 3,
        "timeframe": "5m",
        "dataformat_ohlcv": "json",
        "exchange": {
            "name": "binance",
            "pair_whitelist": list(jumps),
            "ccxt_config": ccxt_config,
            "ccxt_async_config": ccxt_config,
        },
        "pairlists": [{"method": "StaticPairList"}],
        # Binance offers no ticker pricing in freqtrade: the order book's top (never read in a backtest).
        "entry_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
        "exit_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
    }
    (user / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    data = user / "data" / "futures"
    data.mkdir(parents=True)
    for pair, (price, at) in jumps.items():
        name = pair.replace("/", "_").replace(":", "_")
        bars = []
        for i in range(CANDLES):
            close = price * 1.02 if i >= at else price
            opened = price * 1.02 if i > at else price
            ts = int((START + timedelta(minutes=5 * i)).timestamp() * 1000)
            bars.append([ts, opened, max(opened, close), min(opened, close), close, 100.0])
        hours = [int((START + timedelta(hours=h)).timestamp() * 1000) for h in range(CANDLES // 12)]
        _write(data / f"{name}-5m-futures.json", bars)
        _write(data / f"{name}-1h-mark.json", [[t, price, price, price, price, 0.0] for t in hours])
        _write(data / f"{name}-1h-funding_rate.json", [[t, 0.0001, 0.0001, 0.0001, 0.0001, 0.0] for t in hours])
    return user


def backtest_command(python: Path, user: Path) -> list[str]:
    return [
        str(python.parent / "freqtrade"),
        "backtesting",
        "--userdir",
        str(user),
        "--config",
        str(user / "config.json"),
        "--datadir",
        str(user / "data"),
        "--timerange",
        TIMERANGE,
        "--cache",
        "none",
        "--export",
        "trades",
        "--backtest-directory",
        str(user / "backtest_results"),
    ]


def trades(python: Path, user: Path) -> list[dict[str, Any]]:
    """The trades freqtrade's backtest made, as its own loader reads them."""
    out = subprocess.run(
        [str(python), "-c", _TRADES, str(user / "backtest_results")], check=True, capture_output=True, text=True
    ).stdout
    return list(json.loads(out.strip().splitlines()[-1]))


def _write(path: Path, rows: list[list[float]]) -> None:
    path.write_text(json.dumps(rows), encoding="utf-8")
