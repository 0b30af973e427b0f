"""Numbers in sentences agree with their nouns."""

from __future__ import annotations

import pytest

from guard.wording import count


@pytest.mark.parametrize(
    ("n", "noun", "plural", "text"),
    [(0, "order", None, "0 orders"), (1, "order", None, "1 order"), (2, "bad row", None, "2 bad rows"),
     (1, "child", "children", "1 child"), (3, "child", "children", "3 children")],
)
def test_count_puts_the_noun_in_the_plural_except_for_one(n: int, noun: str, plural: str | None, text: str) -> None:
    assert count(n, noun, plural) == text
