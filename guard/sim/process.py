"""The simulated market: a seeded, reproducible price process for several correlated symbols.

One process drives both offline history (`generate_history`, training data) and the live
simulated exchange (the server streams what this process generates as simulated time moves).

The model, per 1-minute base bar and per symbol:

- returns from a common market factor plus an idiosyncratic part (correlated symbols, each
  with its own beta and volatility);
- volatility clustering: a log-volatility AR(1) shared by the market;
- regime switches: a two-state Markov chain (calm / volatile, volatility ×2.2);
- jumps: rare market-wide and per-symbol jumps of several sigma;
- a scenario overlay: "trend" adds drift segments that flip direction; "regime-shift"
  multiplies volatility by 5 for an hour; "flash-crash" drops every symbol 30 % within one
  minute and recovers over the next 30 minutes.

Each bar is made of `TICKS_PER_BAR` ticks (5 s apart); a tick is a price and a volume, and the
bar is exactly their open/high/low/close/sum. Prices are rounded to the symbol's tick size and
volumes to its step size, as a real venue's would be.

Every random component draws from its own generator (spawned from one seed) a fixed number of
values per bar, so generating 1,000 bars at once or in ten chunks of 100 gives identical bars:
the live server and `generate_history` agree for the same seed and origin.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from guard.domain import Bar
from guard.errors import BadInput
from guard.timeframes import timeframe_ms

BASE_TIMEFRAME = "1m"
BASE_MS = 60_000
TICKS_PER_BAR = 12
"""Ticks per 1-minute bar: one every 5 simulated seconds."""
TICK_MS = BASE_MS // TICKS_PER_BAR
MIN_TICK_STEPS = 100
"""Smallest traded amount per tick, in step sizes: the live server splits a tick into up to
this many trades of whole steps each."""


SCENARIOS = ("calm", "trend", "regime-shift", "flash-crash")
"""Scenarios that shape prices. (Fault scenarios such as feed stalls live in the server.)"""

FLASH_CRASH_DROP = 0.30
FLASH_CRASH_RECOVERY_BARS = 30
REGIME_SHIFT_FACTOR = 5.0
REGIME_SHIFT_BARS = 60

_VOLATILE_REGIME_FACTOR = 2.2
_P_CALM_TO_VOLATILE = 1.0 / 360.0
_P_VOLATILE_TO_CALM = 1.0 / 60.0
_LOGVOL_PHI = 0.995
_LOGVOL_SD = 0.35
_P_MARKET_JUMP = 0.0004
_P_SYMBOL_JUMP = 0.0004
_JUMP_SIGMAS = 8.0
_TREND_DRIFT_SIGMAS = 0.15
_P_TREND_FLIP = 1.0 / 360.0


@dataclass(frozen=True, slots=True)
class SymbolParams:
    """How one simulated symbol moves and trades."""

    symbol: str
    start_price: float
    sigma: float
    """Standard deviation of a 1-minute log return in the calm regime."""
    beta: float
    """Loading on the market factor (0..1); the rest is idiosyncratic."""
    tick_size: float
    step_size: float
    tick_volume: float
    """Mean traded amount per 5-second tick."""


_KNOWN: dict[str, tuple[float, float, float, float, float, float]] = {
    # base: (start price, 1m sigma, beta, tick size, step size, volume per tick)
    "BTC": (100_000.0, 0.0006, 0.95, 0.1, 0.001, 4.0),
    "ETH": (3_500.0, 0.0008, 0.85, 0.01, 0.001, 60.0),
    "SOL": (150.0, 0.0011, 0.75, 0.01, 1.0, 900.0),
    "BNB": (600.0, 0.0008, 0.7, 0.01, 0.01, 80.0),
    "XRP": (0.6, 0.0012, 0.7, 0.0001, 0.1, 150_000.0),
    "DOGE": (0.15, 0.0014, 0.65, 0.00001, 1.0, 500_000.0),
}


def symbol_params(symbol: str) -> SymbolParams:
    """Return the simulation parameters of a symbol; unknown bases get stable made-up ones.

    Raises:
        BadInput: when the symbol is not a ccxt unified symbol like "BTC/USDT:USDT".
    """
    if "/" not in symbol:
        raise BadInput(f"symbol {symbol!r}: must be a ccxt unified symbol like 'BTC/USDT:USDT'")
    base = symbol.split("/", 1)[0].upper()
    if base in _KNOWN:
        price, sigma, beta, tick, step, vol = _KNOWN[base]
        return SymbolParams(symbol, price, sigma, beta, tick, step, vol)
    # A stable hash, not hash(): the same unknown symbol must look the same in every process.
    h = zlib.crc32(base.encode())
    magnitude = h % 4
    price = float(10**magnitude) * (1 + (h >> 8) % 9)
    tick = 10.0 ** (magnitude - 4)
    return SymbolParams(symbol, price, 0.001, 0.7, tick, 0.01, 20_000.0 / price)


def check_scenario(scenario: str) -> str:
    """Return the scenario if the price process knows it.

    Raises:
        BadInput: naming the allowed scenarios.
    """
    if scenario not in SCENARIOS:
        raise BadInput(f"scenario {scenario!r}: price scenarios are {', '.join(SCENARIOS)}")
    return scenario


@dataclass(frozen=True, slots=True)
class TickBlock:
    """`n` consecutive base bars of every symbol, tick by tick.

    Arrays are indexed [bar, tick, symbol]; `open_time[bar]` is the bar's start in ms.
    """

    first_index: int
    """Index of the first bar since the process origin."""
    open_time: npt.NDArray[np.int64]
    price: npt.NDArray[np.float64]
    volume_steps: npt.NDArray[np.int64]
    """Traded amount per tick, in whole step sizes (exact sums)."""

    @property
    def n(self) -> int:
        return int(self.open_time.shape[0])


class PriceProcess:
    """The stateful generator behind `generate_history` and the live simulated exchange.

    Args:
        symbols: ccxt unified symbols, in a fixed order (the order is part of the seed).
        origin_ms: open time of bar 0; floored to the minute.
        seed: the same seed, origin, symbols and scenario give the same prices.
        scenario: one of `SCENARIOS`.
        onset_ms: when a scenario's one-off event ("flash-crash", "regime-shift") begins;
            None means at the origin.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        origin_ms: int,
        *,
        seed: int = 7,
        scenario: str = "calm",
        onset_ms: int | None = None,
    ) -> None:
        if not symbols:
            raise BadInput("symbols: at least one is needed")
        if len(set(symbols)) != len(symbols):
            raise BadInput(f"symbols {list(symbols)!r}: must not repeat")
        self.symbols = tuple(symbols)
        self.params = tuple(symbol_params(s) for s in self.symbols)
        self.origin_ms = origin_ms - origin_ms % BASE_MS
        self._n_sym = len(self.symbols)
        self._sigma = np.array([p.sigma for p in self.params])
        self._beta = np.array([p.beta for p in self.params])
        self._idio = np.sqrt(1.0 - self._beta**2)
        self._tick = np.array([p.tick_size for p in self.params])
        self._step = np.array([p.step_size for p in self.params])
        self._tick_volume = np.array([p.tick_volume for p in self.params])
        self._decimals = [_decimals(p.tick_size) for p in self.params]
        # One generator per random component: each draws a fixed count per bar, so the
        # stream is the same however the bars are chunked.
        seqs = np.random.SeedSequence([seed, len(self.symbols)]).spawn(10)
        self._rng_ret = np.random.default_rng(seqs[0])
        self._rng_vol = np.random.default_rng(seqs[1])
        self._rng_regime = np.random.default_rng(seqs[2])
        self._rng_mjump = np.random.default_rng(seqs[3])
        self._rng_mjump_size = np.random.default_rng(seqs[7])
        self._rng_sjump = np.random.default_rng(seqs[4])
        self._rng_sjump_size = np.random.default_rng(seqs[8])
        self._rng_trend = np.random.default_rng(seqs[5])
        self._rng_volume = np.random.default_rng(seqs[6])
        self._logprice = np.log(np.array([p.start_price for p in self.params]))
        self._logvol = 0.0
        self._volatile = False
        self._trend_dir = 1.0
        self._next_index = 0
        self._scenario = check_scenario(scenario)
        self._onset_index = 0 if onset_ms is None else self.index_at(onset_ms)

    @property
    def scenario(self) -> str:
        return self._scenario

    @property
    def next_index(self) -> int:
        """Index of the next bar `advance` will generate."""
        return self._next_index

    def index_at(self, ts_ms: int) -> int:
        """Index of the base bar containing a timestamp."""
        return (ts_ms - self.origin_ms) // BASE_MS

    def set_scenario(self, scenario: str, onset_ms: int) -> None:
        """Switch scenario from the bar containing `onset_ms` (or the next one not yet made)."""
        self._scenario = check_scenario(scenario)
        self._onset_index = max(self.index_at(onset_ms), self._next_index)

    def advance(self, n: int) -> TickBlock:
        """Generate the next `n` base bars of every symbol."""
        if n <= 0:
            raise ValueError("n must be positive")
        s, k = self._n_sym, TICKS_PER_BAR
        first = self._next_index
        idx = np.arange(first, first + n)

        # --- per-bar volatility: AR(1) log-vol and the Markov regime (sequential by nature,
        # but only one scalar each per bar; the loops stay cheap).
        z_vol = self._rng_vol.standard_normal(n)
        u_regime = self._rng_regime.random(n)
        u_trend = self._rng_trend.random(n)
        eta = _LOGVOL_SD * math.sqrt(1 - _LOGVOL_PHI**2)
        logvol = np.empty(n)
        volatile = np.empty(n, dtype=bool)
        trend_dir = np.empty(n)
        h, reg, tdir = self._logvol, self._volatile, self._trend_dir
        for i in range(n):
            h = _LOGVOL_PHI * h + eta * z_vol[i]
            logvol[i] = h
            reg = (u_regime[i] >= _P_VOLATILE_TO_CALM) if reg else (u_regime[i] < _P_CALM_TO_VOLATILE)
            volatile[i] = reg
            if u_trend[i] < _P_TREND_FLIP:
                tdir = -tdir
            trend_dir[i] = tdir
        self._logvol, self._volatile, self._trend_dir = h, bool(reg), tdir
        vol_mult = np.exp(logvol - 0.5 * _LOGVOL_SD**2) * np.where(volatile, _VOLATILE_REGIME_FACTOR, 1.0)

        # --- scenario overlay: volatility multiplier, drift and a shock path per tick.
        rel = idx - self._onset_index
        drift = np.zeros((n, s))
        shock = np.zeros((n, k))
        volume_mult = np.ones(n)
        if self._scenario == "trend":
            drift = (trend_dir * _TREND_DRIFT_SIGMAS)[:, None] * self._sigma[None, :]
        elif self._scenario == "regime-shift":
            on = (rel >= 0) & (rel < REGIME_SHIFT_BARS)
            vol_mult = np.where(on, vol_mult * REGIME_SHIFT_FACTOR, vol_mult)
            volume_mult = np.where(on, 3.0, 1.0)
        elif self._scenario == "flash-crash":
            drop = math.log(1 - FLASH_CRASH_DROP)
            crash = rel == 0
            recovering = (rel >= 1) & (rel <= FLASH_CRASH_RECOVERY_BARS)
            shock[crash, :] = drop / k
            shock[recovering, :] = -drop / (FLASH_CRASH_RECOVERY_BARS * k)
            stressed = (rel >= 0) & (rel <= FLASH_CRASH_RECOVERY_BARS)
            vol_mult = np.where(stressed, vol_mult * 3.0, vol_mult)
            volume_mult = np.where(crash, 20.0, np.where(stressed, 4.0, 1.0))

        # --- tick returns: market factor + idiosyncratic, scaled per symbol.
        z = self._rng_ret.standard_normal((n, k, s + 1))
        factor, idio = z[:, :, :1], z[:, :, 1:]
        eps = self._beta * factor + self._idio * idio
        sub_sigma = (vol_mult[:, None, None] * self._sigma[None, None, :]) / math.sqrt(k)
        ret = eps * sub_sigma + drift[:, None, :] / k + shock[:, :, None]

        # --- jumps: the uniform decides whether and at which tick; fixed draws per bar.
        u_mj = self._rng_mjump.random(n)
        z_mj = self._rng_mjump_size.standard_normal(n)
        u_sj = self._rng_sjump.random((n, s))
        z_sj = self._rng_sjump_size.standard_normal((n, s))
        jump_sigma = _JUMP_SIGMAS * self._sigma[None, :] * vol_mult[:, None]
        for i in np.nonzero(u_mj < _P_MARKET_JUMP)[0].tolist():
            tick = int(u_mj[i] / _P_MARKET_JUMP * k)
            ret[i, tick, :] += z_mj[i] * jump_sigma[i] * self._beta
        for i, j in zip(*np.nonzero(u_sj < _P_SYMBOL_JUMP), strict=True):
            tick = int(u_sj[i, j] / _P_SYMBOL_JUMP * k)
            ret[i, tick, j] += z_sj[i, j] * jump_sigma[i, j]

        logp = self._logprice + np.cumsum(ret.reshape(n * k, s), axis=0)
        self._logprice = logp[-1].copy()
        price = np.exp(logp).reshape(n, k, s)
        # Round to the venue's tick size, never to zero.
        price = np.maximum(np.round(price / self._tick) * self._tick, self._tick)
        for j, decimals in enumerate(self._decimals):
            # Snap away the binary residue of ticks × tick_size (100000.10000000001).
            price[:, :, j] = np.round(price[:, :, j], decimals)

        # --- volume: lognormal, larger when the tick moved more (volume follows volatility).
        z_v = self._rng_volume.standard_normal((n, k, s))
        move = np.abs(eps)
        vol_amount = (
            self._tick_volume
            * np.exp(0.6 * z_v - 0.18)
            * (0.5 + 0.5 * move)
            * np.sqrt(vol_mult)[:, None, None]
            * volume_mult[:, None, None]
        )
        volume_steps = np.maximum(np.round(vol_amount / self._step), MIN_TICK_STEPS).astype(np.int64)

        self._next_index = first + n
        open_time = self.origin_ms + idx.astype(np.int64) * BASE_MS
        return TickBlock(first, open_time, price, volume_steps)

    def bars_of(self, block: TickBlock, symbol_index: int) -> tuple[npt.NDArray[np.float64], ...]:
        """Open, high, low, close and volume arrays of one symbol's base bars in a block."""
        p = block.price[:, :, symbol_index]
        volume = block.volume_steps[:, :, symbol_index].sum(axis=1) * self._step[symbol_index]
        return p[:, 0], p.max(axis=1), p.min(axis=1), p[:, -1], _clean_volume(volume)


def _decimals(size: float) -> int:
    return max(0, -math.floor(math.log10(size) + 1e-9))


def _clean_volume(volume: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    # steps × step_size is inexact in binary; 8 decimals is what the venue would print.
    return np.round(volume, 8)


def aggregate(bars: Sequence[Bar], timeframe: str) -> list[Bar]:
    """Aggregate consecutive closed bars into a larger timeframe (aligned to its boundaries).

    A trailing bucket that is not yet full is returned with `closed=False`.
    """
    ms = timeframe_ms(timeframe)
    out: list[Bar] = []
    if not bars:
        return out
    step = timeframe_ms(bars[0].timeframe)
    per = ms // step
    bucket: list[Bar] = []
    bucket_start = -1
    for bar in bars:
        start = bar.open_time - bar.open_time % ms
        if start != bucket_start and bucket:
            out.append(_merge(bucket, timeframe, bucket_start, len(bucket) == per))
            bucket = []
        bucket_start = start
        bucket.append(bar)
    if bucket:
        out.append(_merge(bucket, timeframe, bucket_start, len(bucket) == per and bucket[-1].closed))
    return out


def _merge(bucket: list[Bar], timeframe: str, start: int, closed: bool) -> Bar:
    return Bar(
        symbol=bucket[0].symbol,
        timeframe=timeframe,
        open_time=start,
        open=bucket[0].open,
        high=max(b.high for b in bucket),
        low=min(b.low for b in bucket),
        close=bucket[-1].close,
        volume=round(sum(b.volume for b in bucket), 8),
        closed=closed,
    )


def generate_history(
    symbols: Sequence[str],
    start_ms: int,
    bars: int,
    timeframe: str = "1m",
    seed: int = 7,
    scenario: str = "calm",
) -> dict[str, list[Bar]]:
    """Generate closed bars of several correlated symbols, reproducibly.

    Pure and deterministic: the same arguments give the same bars, and the same bars the
    simulated exchange serves for the same seed, symbols and origin. Larger timeframes are
    aggregated from 1-minute bars (so their cost is that of the 1-minute bars behind them).
    A one-off scenario event ("flash-crash", "regime-shift") starts at the middle bar.

    Args:
        symbols: ccxt unified symbols, e.g. ("BTC/USDT:USDT", "ETH/USDT:USDT").
        start_ms: open time of the first bar; floored to the timeframe.
        bars: how many bars of `timeframe` to return per symbol.
        timeframe: "1m", "5m", "1h", ... (see `guard.timeframes.TIMEFRAME_MS`).
        seed: seed of the process.
        scenario: one of `SCENARIOS`.

    Returns:
        Bars per symbol, oldest first, every one `closed=True`.

    Raises:
        BadInput: for an unknown timeframe, scenario or symbol, or a negative count.
    """
    if bars < 0:
        raise BadInput(f"bars {bars}: must be >= 0")
    tf_ms = timeframe_ms(timeframe)
    start_ms -= start_ms % tf_ms
    per = tf_ms // BASE_MS
    base_bars = bars * per
    onset = start_ms + (base_bars // 2) * BASE_MS
    process = PriceProcess(symbols, start_ms, seed=seed, scenario=scenario, onset_ms=onset)
    columns: list[list[npt.NDArray[np.float64]]] = [[] for _ in symbols]
    times: list[npt.NDArray[np.int64]] = []
    chunk = 20_000  # bounds memory: one chunk of ticks is ~(chunk × 12 × symbols) floats
    done = 0
    while done < base_bars:
        block = process.advance(min(chunk, base_bars - done))
        times.append(block.open_time)
        for j in range(len(symbols)):
            columns[j].append(np.stack(process.bars_of(block, j)))
        done += block.n
    out: dict[str, list[Bar]] = {}
    open_time = np.concatenate(times) if times else np.empty(0, dtype=np.int64)
    for j, symbol in enumerate(symbols):
        ohlcv = np.concatenate(columns[j], axis=1) if columns[j] else np.empty((5, 0))
        if per > 1:
            out[symbol] = _aggregate_arrays(symbol, timeframe, open_time, ohlcv, per)
        else:
            out[symbol] = [
                Bar(symbol, timeframe, t, o, h, lo, c, v)
                for t, o, h, lo, c, v in zip(open_time.tolist(), *(row.tolist() for row in ohlcv), strict=True)
            ]
    return out


def _aggregate_arrays(
    symbol: str,
    timeframe: str,
    open_time: npt.NDArray[np.int64],
    ohlcv: npt.NDArray[np.float64],
    per: int,
) -> list[Bar]:
    n = open_time.shape[0] // per
    o, h, lo, c, v = (row[: n * per].reshape(n, per) for row in ohlcv)
    t = open_time[: n * per : per]
    return [
        Bar(symbol, timeframe, ti, oi, hi, li, ci, vi)
        for ti, oi, hi, li, ci, vi in zip(
            t.tolist(),
            o[:, 0].tolist(),
            h.max(axis=1).tolist(),
            lo.min(axis=1).tolist(),
            c[:, -1].tolist(),
            np.round(v.sum(axis=1), 8).tolist(),
            strict=True,
        )
    ]
