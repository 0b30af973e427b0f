"""Numbers in sentences agree with their nouns."""

from __future__ import annotations

import pytest

from guard.wording import count, utc_minute


@pytest.mark.parametrize(
    ("n", "noun", "plural", "text"),
    [
        (0, "order", None, "0 orders"),
        (1, "order", None, "1 order"),
        (2, "bad row", None, "2 bad rows"),
        (1, "child", "children", "1 child"),
        (3, "child", "children", "3 children"),
        (6608, "bar", None, "6,608 bars"),
    ],
)
def test_count_puts_the_noun_in_the_plural_except_for_one(n: int, noun: str, plural: str | None, text: str) -> None:
    assert count(n, noun, plural) == text


def test_utc_minute_is_the_time_in_utc_to_the_minute() -> None:
    assert utc_minute(1_795_392_000_000) == "2026-11-23 00:00 UTC"
    assert utc_minute(1_795_392_059_999) == "2026-11-23 00:00 UTC"
