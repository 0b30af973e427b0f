"""Keeping secrets out of the record: known secret values, and anything shaped like a secret.

An operator who pastes an API key into a reject reason, or a source whose "why" carries a bearer
token, must not put it in the journal (which is kept for audit and exported) or the logs. Known
values (the control token, operators' and sources' tokens, venue keys from the environment) are
removed wherever they appear; free text is also cleared of what looks like a credential: a bearer
header, a `key=value` pair whose key names a secret, a private key block, well-known key prefixes,
and long random-looking strings (mixed case and digits, 32+ characters). Hashes (lowercase hex) and
guard's own ids are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 6

_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"), r"\1 " + REDACTED),
    (
        re.compile(
            r"(?i)\b((?:api[_-]?)?(?:key|secret|token|password|passwd|passphrase|signature|auth))"
            r"(\s*[:=]\s*)[\"']?[^\s\"',;]{6,}"
        ),
        r"\1\2" + REDACTED,
    ),
    # "password is hunter22", "api key AbC123...": only for words that name nothing but a secret, and only
    # when what follows looks like one (a digit in it, or long), so "token of thanks" stays.
    (
        re.compile(
            r"(?i)\b((?:api[_ -]?key|apikey|secret|token|password|passwd|passphrase))(\s+(?:is\s+)?)"
            r"[\"']?(?=[^\s\"',;]*\d|[^\s\"',;]{16,})[^\s\"',;]{6,}"
        ),
        r"\1\2" + REDACTED,
    ),
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}"), REDACTED),
    (re.compile(r"\b(?:ghp|gho|ghs|github_pat|xox[abprs])[_-][A-Za-z0-9_\-]{16,}"), REDACTED),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), REDACTED),
)
_RANDOM_LOOKING = re.compile(r"[A-Za-z0-9_\-+/=]{32,}")


def _random_looking(match: re.Match[str]) -> str:
    word = match.group(0)
    looks_random = any(c.isupper() for c in word) and any(c.islower() for c in word) and any(c.isdigit() for c in word)
    return REDACTED if looks_random else word


class Scrubber:
    """Removes known secrets and secret-shaped text from free text. Share one per process (the daemon builds
    it and hands it to what needs it); add secrets as they become known."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self._known: set[str] = set()
        for secret in known:
            self.add(secret)

    def add(self, secret: str) -> None:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            self._known.add(secret)

    def known(self, text: str) -> str:
        """`text` with every known secret value replaced."""
        for secret in self._known:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def __call__(self, text: str) -> str:
        """`text` with known secrets and anything shaped like a secret replaced."""
        if not text:
            return text
        text = self.known(text)
        for pattern, replacement in _SHAPES:
            text = pattern.sub(replacement, text)
        return _RANDOM_LOOKING.sub(_random_looking, text)
