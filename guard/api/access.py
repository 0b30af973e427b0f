"""What a bearer token lets its holder do: the shared token's file, the names an operator may go by, and the
routes a source's credential may use.

Whose token it is comes from `guard.api.credentials`; the server checks these rules on every request.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import structlog

from guard.api.credentials import Identity
from guard.api.protocol import MAX_OPERATOR_CHARS
from guard.errors import DaemonError

log = structlog.get_logger(__name__)


def load_or_create_token(path: Path) -> str:
    """The bearer token, created with mode 0600 on first start; a looser file is tightened, loudly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != 0o600:
            log.warning("token_file_permissions_tightened", path=str(path), mode=oct(mode))
            path.chmod(0o600)
        token = path.read_text(encoding="utf-8").strip()
        if len(token) < 32:
            raise DaemonError(f"the token in {path} is too short; delete the file to have a new one made") from None
        return token
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token


_SOURCE_PATHS = frozenset({"/v1/commands", "/v1/ws", "/v1/market", "/v1/proposals", "/v1/account"})
"""Where a source's credential may go (its commands are limited to proposing, in the handler; its WebSocket
carries its own commands' replies and nothing else)."""
_SOURCE_PREFIXES = ("/v1/sources/", "/v1/proposals/")
"""Routes that check for themselves that what a source asks for is its own (its name, its proposal)."""


def source_may(path: str) -> bool:
    return path in _SOURCE_PATHS or path.startswith(_SOURCE_PREFIXES)


def not_yours(identity: Identity, claimed: str) -> str:
    return (
        f"this token is {identity.name}'s own credential: it cannot speak as {claimed!r} "
        "(each person uses their own token; the shared token is for a one-person setup)"
    )


def operator_problem(operator: str) -> str:
    """Why this operator id cannot be used ("" when it can): 1 to 64 printable characters, on every route."""
    if not operator or len(operator) > MAX_OPERATOR_CHARS or not operator.isprintable():
        return f"an operator id is 1 to {MAX_OPERATOR_CHARS} printable characters"
    return ""
