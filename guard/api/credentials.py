"""Who is speaking: one credential per person (operator) and per proposal source, each a bearer token.

Identity comes from the token, never from what a client says about itself: four-eyes counts
distinct credentials, and a source's token may only propose. The registry (`credentials.json` in
the state directory, 0600) keeps each credential's name, scope and the SHA-256 of its token; the
token itself is written once to its own file (`operators/NAME.token`, `sources/NAME.token`, 0600)
for the console, the CLI or the source's program to read. The daemon re-reads the registry when it
changes, so `guard operator revoke` takes effect on the next command without a restart.

The single shared token (`token`) remains for a one-person setup: its holder names themselves, and
all of them together count as one credential, "shared".
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from guard.errors import BadInput

SHARED = "shared"
"""The credential id of the shared token (a one-person setup)."""
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
RESERVED = frozenset({SHARED, "guard", "model", "operator", "signal", "unknown", "source", "sources", "operators"})


class Scope(StrEnum):
    OPERATOR = "operator"
    """A person: decides, kills, re-arms, changes limits."""
    SOURCE = "source"
    """A program that proposes (freqtrade, an LLM agent, a script, a webhook): may only propose and read the fate
    of its own proposals."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request comes from, as its token says."""

    name: str
    """The operator or source name the journal records."""
    credential: str
    """Which credential spoke (the name, or "shared"): four-eyes counts these."""
    scope: Scope

    @property
    def shared(self) -> bool:
        return self.credential == SHARED


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    name: str
    scope: Scope
    created_at: int
    rotated_at: int | None
    revoked_at: int | None
    token_sha256: str

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CredentialStore:
    """The registry of credentials in one state directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "credentials.json"
        self._loaded: tuple[int, int] | None = None
        self._entries: dict[str, CredentialInfo] = {}

    def token_file(self, name: str, scope: Scope) -> Path:
        return self.root / f"{scope.value}s" / f"{name}.token"

    # --- reading -----------------------------------------------------------------------

    def entries(self) -> list[CredentialInfo]:
        """Every credential ever issued (revoked ones included), by name."""
        self._refresh()
        return sorted(self._entries.values(), key=lambda c: (c.scope, c.name))

    def identify(self, token: str) -> Identity | None:
        """The identity behind `token`, or None when no active credential has it (the shared token is the
        server's to recognise: its holders name themselves)."""
        self._refresh()
        presented = _digest(token)
        for info in self._entries.values():
            if info.active and hmac.compare_digest(presented, info.token_sha256):
                return Identity(info.name, info.name, info.scope)
        return None

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._entries, self._loaded = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._loaded:
            return
        self._entries = {c.name: c for c in _read(self.path)}
        self._loaded = stamp

    # --- changing ----------------------------------------------------------------------

    def add(self, name: str, scope: Scope) -> str:
        """Issue a credential. Returns the token (also written to its token file, 0600).

        Raises:
            BadInput: a malformed or reserved name, or a name already issued (rotate or revoke it instead).
        """
        _check_name(name)
        with self._locked() as entries:
            existing = entries.get(name)
            if existing is not None and existing.active:
                raise BadInput(
                    f"{name!r} already has a {existing.scope.value} credential: "
                    f"`guard {existing.scope.value} rotate {name}` for a new token, or revoke it first"
                )
            token = secrets.token_urlsafe(32)
            entries[name] = CredentialInfo(name, scope, _now(), None, None, _digest(token))
            self._write_token(name, scope, token)
        return token

    def rotate(self, name: str) -> str:
        """A new token for an existing credential; the old one stops working at once."""
        with self._locked() as entries:
            info = entries.get(name)
            if info is None or not info.active:
                raise BadInput(f"no active credential named {name!r} (`guard operator list`, `guard source list`)")
            token = secrets.token_urlsafe(32)
            entries[name] = CredentialInfo(name, info.scope, info.created_at, _now(), None, _digest(token))
            self._write_token(name, info.scope, token)
        return token

    def revoke(self, name: str) -> CredentialInfo:
        """Stop a credential: its token is refused from the next request on, and its token file is removed."""
        with self._locked() as entries:
            info = entries.get(name)
            if info is None or not info.active:
                raise BadInput(f"no active credential named {name!r}")
            revoked = CredentialInfo(name, info.scope, info.created_at, info.rotated_at, _now(), info.token_sha256)
            entries[name] = revoked
            self.token_file(name, info.scope).unlink(missing_ok=True)
        return revoked

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, CredentialInfo]]:
        """The registry, read under an exclusive lock and written back atomically (CLI processes may race)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.root / "credentials.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            entries = {c.name: c for c in (_read(self.path) if self.path.exists() else [])}
            yield entries
            _write(self.path, list(entries.values()))
            self._loaded = None
        finally:
            os.close(fd)

    def _write_token(self, name: str, scope: Scope, token: str) -> None:
        path = self.token_file(name, scope)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(token + "\n")
        os.replace(tmp, path)


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise BadInput(
            f"credential name {name!r}: 1 to 64 characters, lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if name in RESERVED:
        raise BadInput(f"credential name {name!r} is reserved; choose another")


def _now() -> int:
    return int(time.time() * 1000)


def _read(path: Path) -> list[CredentialInfo]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [
            CredentialInfo(
                str(c["name"]),
                Scope(c["scope"]),
                int(c["created_at"]),
                None if c.get("rotated_at") is None else int(c["rotated_at"]),
                None if c.get("revoked_at") is None else int(c["revoked_at"]),
                str(c["token_sha256"]),
            )
            for c in data["credentials"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BadInput(f"the credential registry {path} cannot be read: {e}") from e


def _write(path: Path, entries: list[CredentialInfo]) -> None:
    data = {
        "version": 1,
        "credentials": [
            {
                "name": c.name,
                "scope": c.scope.value,
                "created_at": c.created_at,
                "rotated_at": c.rotated_at,
                "revoked_at": c.revoked_at,
                "token_sha256": c.token_sha256,
            }
            for c in sorted(entries, key=lambda c: c.name)
        ],
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
