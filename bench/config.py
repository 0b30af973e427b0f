"""The config's validation: changing one risk limit at run time (the desk applies every run-time change
on each market event) and loading config.toml. `replace_setting` checks only the changed key: it was
110-140 µs a call when it re-validated the whole section by hand."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from guard.config import RiskSection, load_config, replace_setting

SHIPPED = Path(__file__).resolve().parents[1] / "config.toml"
REPLACE_TARGET_US = 10.0
"""A run-time limit applied on every market event must cost next to nothing on the loop that serves the kill."""
CHANGES = (("max_leverage", 2.5), ("daily_loss_limit", "500"), ("max_orders_per_minute", 10))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _timed(call: Any, n: int, per: int) -> list[float]:
    """Microseconds a call, from `n` samples of `per` calls each (a sample is too short to time alone)."""
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        for _ in range(per):
            call()
        samples.append((time.perf_counter() - started) / per * 1e6)
    return samples


def run(quick: bool = False) -> Iterable[dict[str, Any]]:
    n = 50 if quick else 500
    risk = RiskSection()
    for key, value in CHANGES:
        samples = _timed(lambda key=key, value=value: replace_setting(risk, "risk", key, value), n, 100)
        p50 = _pct(samples, 0.5)
        yield {
            "figure": f"replace_setting risk.{key} = {value!r}",
            "value": round(p50, 2),
            "unit": "µs",
            "p50": round(p50, 2),
            "p99": round(_pct(samples, 0.99), 2),
            "target": f"<= {REPLACE_TARGET_US:g}",
            "met": p50 <= REPLACE_TARGET_US,
        }
    samples = _timed(lambda: load_config(SHIPPED), n // 5 or 1, 10)
    yield {
        "figure": "load_config(config.toml): read, parse, check every key and the contradictions",
        "value": round(_pct(samples, 0.5), 1),
        "unit": "µs",
        "p50": round(_pct(samples, 0.5), 1),
        "p99": round(_pct(samples, 0.99), 1),
    }
