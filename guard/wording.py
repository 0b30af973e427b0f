"""Small helpers for the sentences guard shows people."""

from __future__ import annotations

from datetime import UTC, datetime


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`3 orders`, `1 order`, `0 orders`, `6,608 bars`: a number with its noun agreeing."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def utc_minute(ms: int) -> str:
    """`2026-11-24 16:27 UTC`: an epoch-milliseconds time, to the minute."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
