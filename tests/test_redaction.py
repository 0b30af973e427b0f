"""Secrets typed into free text never reach the record: known values and anything shaped like a secret."""

from __future__ import annotations

import pytest

from guard.redaction import REDACTED, Scrubber

BINANCE_STYLE_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOrMKUN3Ih8p6ht3zaYHQ2WydxEBfYBGHQ5r0Cl5tB"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"approved, key {BINANCE_STYLE_KEY}", BINANCE_STYLE_KEY),
        ("Authorization: Bearer abcDEF123456ghiJKL", "abcDEF123456ghiJKL"),
        ("secret=hunter22hunter", "hunter22hunter"),
        ("api_key: 'AbC123xYz987'", "AbC123xYz987"),
        ("password is s3cr3tpass", "s3cr3tpass"),
        ("use sk-proj-abcdefghijklmnop1234", "sk-proj-abcdefghijklmnop1234"),
        ("aws AKIAABCDEFGHIJKLMNOP here", "AKIAABCDEFGHIJKLMNOP"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
        ("token: Zp0q-8sK_2LmN4oP6rS9tU1vW3xY5zA7bC0dE2fG4hI", "Zp0q-8sK_2LmN4oP6rS9tU1vW3xY5zA7bC0dE2fG4hI"),
    ],
)
def test_scrubber_removes_secret_shaped_text(text: str, secret: str) -> None:
    """Whatever looks like a credential is replaced, and the rest of the sentence stays readable."""
    scrubbed = Scrubber()(text)
    assert secret not in scrubbed
    assert REDACTED in scrubbed


def test_scrubber_removes_known_secrets_anywhere() -> None:
    """A known value is removed even where it does not look like a secret (short, all lowercase)."""
    scrub = Scrubber(["plainlowercase"])
    assert scrub("reason: plainlowercase!") == f"reason: {REDACTED}!"


@pytest.mark.parametrize(
    "text",
    [
        "price moved 60 bps since P000123 was priced",
        "config 3f5a9c2e1b7d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a",  # a sha256: lowercase hex
        "gabc123-P000001-E",
        "the market passed its stop 97000.0; re-priced at 96450.5 as version 2",
        "took profit: a token of thanks",
    ],
)
def test_scrubber_leaves_ordinary_text_alone(text: str) -> None:
    """Reasons, ids, prices and hashes are not secrets."""
    assert Scrubber()(text) == text


@pytest.mark.parametrize("text", ["key levels broken on the 4h", "secret sauce", "a token of thanks"])
def test_scrubber_leaves_words_that_merely_name_secrets(text: str) -> None:
    """A word like 'key' or 'secret' in a sentence is not a credential."""
    assert Scrubber()(text) == text
