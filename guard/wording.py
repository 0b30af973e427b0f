"""Small helpers for the sentences guard shows people."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`3 orders`, `1 order`, `0 orders`: a number with its noun agreeing."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
