"""One structlog configuration for every guard process.

Pretty on a terminal, JSON otherwise; stdlib logs (aiohttp, ccxt, asyncio) routed through the
same processors; and a redaction step that removes secrets whatever key or text they hide in.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from guard.redaction import REDACTED, Scrubber

log = structlog.get_logger(__name__)

_SECRET_KEY = re.compile(r"(secret|token|password|passphrase|api_?key|signature|authorization)", re.I)


class SecretRedactor:
    """A structlog processor that redacts secret-looking keys and any known secret value.

    Known values (API keys read from the environment, the control token) are scrubbed from
    every string in the event, so a secret that leaks into an exception message or a URL
    still never reaches a log line.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.scrubber = Scrubber(secrets)
        """The known secrets, shared with what scrubs free text before it is recorded (the API's commands)."""

    def add(self, secret: str) -> None:
        self.scrubber.add(secret)

    def __call__(self, _logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key in list(event):
            event[key] = self._clean(key, event[key])
        return event

    def scrub(self, text: str) -> str:
        return self.scrubber.known(text)

    def _clean(self, key: str, value: Any) -> Any:
        if key != "event" and _SECRET_KEY.search(key) and value not in (None, "", False):
            return REDACTED
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._clean("", v) for v in value]
        if isinstance(value, BaseException):
            return self.scrub(repr(value))
        return value


def configure(
    level: str = "info",
    fmt: str = "auto",
    redactor: SecretRedactor | None = None,
    stream: Any = None,
) -> SecretRedactor:
    """Configure structlog and stdlib logging once per process. Returns the redactor in use."""
    stream = stream or sys.stderr
    redactor = redactor or SecretRedactor()
    as_json = fmt == "json" or (fmt == "auto" and not getattr(stream, "isatty", lambda: False)())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info if as_json else structlog.processors.StackInfoRenderer(),
        redactor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=getattr(stream, "isatty", lambda: False)())
    )
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # A call below the level is a bare `return None` (no event dict, no processor): what a replay's
        # thousands of per-proposal info lines cost at level "error". filter_by_level still applies the
        # stdlib level to what passes.
        wrapper_class=structlog.make_filtering_bound_logger(level.upper()),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("asyncio", "aiohttp.access", "ccxt", "urllib3", "markdown_it"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return redactor


def log_file() -> str | None:
    """The path of the regular file stderr writes to, if it is one (Linux: through /proc)."""
    try:
        if not stat.S_ISREG(os.fstat(2).st_mode):
            return None
        target = os.readlink("/proc/self/fd/2")
    except OSError:
        return None
    return None if target.endswith(" (deleted)") else target


def reopen_log(target: str | None) -> None:
    """SIGHUP: reopen the log file stderr was writing to (`log_file()` at start), after a rotation, as daemons
    do. It never stops the daemon; on a terminal (`target` None) there is nothing to reopen."""
    if target is None:
        log.info("sighup_ignored", reason="the log is not a file")
        return
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError as e:
        log.error("log_reopen_failed", path=target, error=str(e))
        return
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    finally:
        os.close(fd)
    log.info("log_reopened", path=target)
