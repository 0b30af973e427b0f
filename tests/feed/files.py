"""OHLCV files as other tools write them, for import tests: a random walk on a venue's tick grid."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

T0_MS = 1_767_225_600_000
"""2026-01-01 00:00 UTC."""


def walk_rows(
    n: int,
    price: float,
    decimals: int,
    *,
    step_ms: int = 60_000,
    seed: int = 7,
    sigma: float = 0.002,
    volume_decimals: int = 3,
) -> list[tuple[int, str, str, str, str, str]]:
    """`n` bars (open time ms, then open, high, low, close, volume as text) on a tick of 10**-decimals."""
    rng = np.random.default_rng(seed)
    tick = 10.0**-decimals
    rows = []
    last = price
    for i in range(n):
        close = last * math.exp(rng.normal(0, sigma))
        high = max(last, close) * (1 + abs(rng.normal(0, sigma / 3)))
        low = min(last, close) * (1 - abs(rng.normal(0, sigma / 3)))
        o, h, lo, c = (round(x / tick) * tick for x in (last, high, low, close))
        volume = round(float(rng.uniform(1, 500)), volume_decimals)
        prices = (f"{x:.{decimals}f}" for x in (o, h, lo, c))
        rows.append((T0_MS + i * step_ms, *prices, f"{volume:.{volume_decimals}f}"))
        last = c
    return rows


def write_csv(
    path: Path,
    rows: list[tuple[int, str, str, str, str, str]],
    *,
    header: str | None = "timestamp,open,high,low,close,volume",
    stamp: Callable[[int], str] = str,
) -> Path:
    """Write rows as a CSV, the timestamp written by `stamp` (milliseconds as they are, by default)."""
    lines = [header] if header is not None else []
    lines += [",".join((stamp(t), *rest)) for t, *rest in rows]
    path.write_text("\n".join(lines) + "\n")
    return path
