"""Where the daemon is and which token to show it, from arguments, the environment or the state directory.

In order, each setting from the first place that has it:

- the daemon: `url=` / `GUARD_URL` (`http://127.0.0.1:8765`, or `unix:/path/to/guard.sock`), else the state
  directory (`home=` / `GUARD_HOME` / `./.guard`): its control socket, or the `endpoint` file a TCP daemon
  writes;
- the token: `token=`, else the token file of `source=` (`<home>/sources/<NAME>.token`, what
  `guard source add NAME` wrote), else `GUARD_TOKEN`, else the token file of `GUARD_SOURCE`. Arguments come
  before the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from guard.api.client import TOKEN_ENV
from guard.api.credentials import NAME
from guard.client.errors import DaemonNotRunning, NotConfigured
from guard.paths import StatePaths

URL_ENV = "GUARD_URL"
SOURCE_ENV = "GUARD_SOURCE"
HOME_ENV = "GUARD_HOME"
DEFAULT_HOME = ".guard"
"""The config's default state directory (`guard.state_dir`), relative to where the program runs."""


@dataclass(frozen=True, slots=True)
class Connection:
    """How to reach the daemon as one source."""

    base_url: str
    """`http://host:port`, or `http://guard` over the unix socket `socket`."""
    socket: str | None
    token: str
    source: str
    """The source's name ("" when only a token was given: the daemon knows whose it is)."""

    def __repr__(self) -> str:  # never print a token
        where = f"unix:{self.socket}" if self.socket else self.base_url
        return f"Connection({where}, source={self.source or '?'})"


def resolve(
    *, home: str | Path | None = None, source: str | None = None, url: str | None = None, token: str | None = None
) -> Connection:
    """The connection these settings (or the environment, or the state directory) describe.

    Raises:
        NotConfigured: no token given and no source named, or the source has no token file.
        DaemonNotRunning: no URL given and no daemon's socket or endpoint in the state directory.
    """
    paths = StatePaths(Path(home or os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser())
    name = source or os.environ.get(SOURCE_ENV, "").strip()
    # Arguments before the environment: a program that names its source is not overridden by a GUARD_TOKEN
    # left in the shell (an operator's, say).
    if token:
        secret = token.strip()
    elif source:
        secret = _token_file(paths, source)
    else:
        secret = os.environ.get(TOKEN_ENV, "").strip() or _token_file(paths, name)
    base_url, socket = _endpoint(url or os.environ.get(URL_ENV, "").strip(), paths)
    return Connection(base_url, socket, secret, name)


def _token_file(paths: StatePaths, name: str) -> str:
    if not name:
        raise NotConfigured(
            f"which source is this? set {SOURCE_ENV}=NAME (its token is read from {paths.root}/sources/NAME.token) "
            f"or {TOKEN_ENV}=TOKEN; a source's credential is issued with `guard source add NAME`"
        )
    if not NAME.match(name):
        raise NotConfigured(f"{name[:80]!r} is not a source's name (as `guard source add NAME` issues them)")
    path = paths.root / "sources" / f"{name}.token"
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise NotConfigured(
            f"no token for source {name!r} at {path}: issue one with `guard source add {name}` "
            f"(revoking a source removes its file), or set {HOME_ENV} to the daemon's state directory"
        ) from None
    except PermissionError:
        raise NotConfigured(f"cannot read {path}: it belongs to another user") from None


def _endpoint(url: str, paths: StatePaths) -> tuple[str, str | None]:
    if url.startswith("unix:"):
        return "http://guard", url.removeprefix("unix:")
    if url:
        if not url.startswith(("http://", "https://")):
            raise NotConfigured(f"{URL_ENV}={url!r}: expected http://HOST:PORT or unix:/path/to/guard.sock")
        return url.rstrip("/"), None
    if paths.socket.exists():
        return "http://guard", str(paths.socket)
    if paths.endpoint.exists():
        host, _, port = paths.endpoint.read_text(encoding="utf-8").strip().rpartition(":")
        return f"http://{host}:{port}", None
    raise DaemonNotRunning(
        f"no daemon is running in {paths.root} (no control socket or endpoint file there): start it with "
        f"`guard up`, or point {HOME_ENV} at its state directory, or set {URL_ENV}"
    )
