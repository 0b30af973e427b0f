"""Small synthetic markets for tests and benchmarks, and the volatility shift used to test novelty.

`toy_bars` is deliberately simple and fast: log returns are a slowly wandering drift plus
noise whose volatility follows its own slow random walk, so a model can learn a little
(the drift persists) and a test can run in seconds. It is not the simulated exchange's
process (`guard.sim`), which the default model is trained on.

`scale_volatility` turns any bar sequence into a "regime shift": every price move, within
and between bars, is multiplied by a factor in log space. Windows from the result look
like the same market with volatility ×factor — the held-out check that the novelty score
notices a market unlike its training data.
"""

from __future__ import annotations

import numpy as np

from guard.domain import Bar
from guard.timeframes import timeframe_ms


def toy_bars(
    symbol: str = "TOY/USDT:USDT",
    n: int = 4000,
    *,
    seed: int = 0,
    start_ms: int = 1_767_225_600_000,
    timeframe: str = "1m",
    sigma: float = 0.001,
    drift_share: float = 0.25,
    drift_persistence: float = 0.995,
    vol_factor: float = 1.0,
    price: float = 100.0,
) -> list[Bar]:
    """Generate `n` contiguous bars of a toy market.

    Args:
        drift_share: standard deviation of the persistent drift, as a fraction of σ.
        drift_persistence: AR(1) coefficient of the drift (close to 1: trends last).
        vol_factor: multiply every move (a regime-shifted market uses 5).
    """
    rng = np.random.default_rng(seed)
    step = timeframe_ms(timeframe)
    drift = np.zeros(n)
    logvol = np.zeros(n)
    innovation = np.sqrt(1 - drift_persistence**2)
    for t in range(1, n):
        drift[t] = drift_persistence * drift[t - 1] + innovation * rng.standard_normal()
        logvol[t] = 0.99 * logvol[t - 1] + 0.1 * np.sqrt(1 - 0.99**2) * 3 * rng.standard_normal()
    vol = sigma * np.exp(logvol) * vol_factor
    returns = drift * drift_share * sigma * vol_factor + vol * rng.standard_normal(n)
    closes = price * np.exp(np.cumsum(returns))
    opens = np.concatenate(([price], closes[:-1]))
    wick = np.abs(rng.standard_normal((2, n))) * vol * 0.5
    highs = np.maximum(opens, closes) * np.exp(wick[0])
    lows = np.minimum(opens, closes) * np.exp(-wick[1])
    volumes = np.exp(rng.standard_normal(n) * 0.3 + np.abs(returns) / sigma * 0.3) * 10.0
    return [
        Bar(
            symbol,
            timeframe,
            start_ms + i * step,
            float(opens[i]),
            float(highs[i]),
            float(lows[i]),
            float(closes[i]),
            float(volumes[i]),
        )
        for i in range(n)
    ]


def scale_volatility(
    opens: np.ndarray, highs: np.ndarray, lows: np.ndarray, closes: np.ndarray, factor: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Multiply every log-price move by `factor`, keeping the first open.

    Each bar's open, high and low are re-drawn relative to the previous close, and each
    close relative to it, so the shifted series is still a valid bar sequence.
    """
    lo, lh, ll, lc = (np.log(a) for a in (opens, highs, lows, closes))
    prev = np.concatenate(([lo[0]], lc[:-1]))
    new_close_log = lo[0] + factor * (lc - lo[0])
    new_prev = np.concatenate(([lo[0]], new_close_log[:-1]))
    shifted = [new_prev + factor * (x - prev) for x in (lo, lh, ll)]
    o, c = np.exp(shifted[0]), np.exp(new_close_log)
    # a real bar whose close equals its low (or high) can come out of exp(log(...)) one ulp
    # outside its range: keep every shifted bar a possible bar
    h = np.maximum(np.exp(shifted[1]), np.maximum(o, c))
    lo_ = np.minimum(np.exp(shifted[2]), np.minimum(o, c))
    return o, h, lo_, c
