"""guard's errors, grouped by what the operator has to do about them.

Business refusals (a risk check blocks, the collar is breached) are returned values, not
exceptions. Exceptions are for input that is wrong and for things that failed. Vendor errors
(ccxt, aiohttp, sqlite3, torch) are translated at the edge with `raise ... from e`.
"""

from __future__ import annotations

import re

_SECRET_KEY = re.compile(r"(secret|token|password|passphrase|api_?key|apikey|private)", re.I)


class GuardError(Exception):
    """Base of every error guard raises on purpose."""

    exit_code = 1


# --- fix your input -------------------------------------------------------------------


class BadInput(GuardError):
    """Input that guard refuses: the message says what was wrong and what is allowed."""

    exit_code = 2


class ConfigError(BadInput):
    """A config file that cannot be used. Names the key, the value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str, source: str = "") -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        self.source = source
        where = f"{source}: " if source else ""
        shown = "[redacted]" if _SECRET_KEY.search(key) else repr(value)
        if _SECRET_KEY.search(key):
            allowed += "; API keys come from environment variables only, never from a config file"
        super().__init__(f"{where}{key} = {shown}: {allowed}")


class InvalidCommand(BadInput):
    """An operator command with a value outside what is allowed (negative size, 50x leverage)."""


class InvalidMarketData(BadInput):
    """A price, quantity or bar that cannot be true (NaN, zero, negative, high < low)."""


class DecodeError(BadInput):
    """A JSON message or journal row that does not fit the type it claims to be."""


class ModelFileError(BadInput):
    """A model artifact that is missing, corrupt, or was built for different features."""


class RealMoneyRefused(BadInput):
    """guard trades paper and sandbox accounts only; a live-money endpoint is refused."""


# --- wait, or check the venue ---------------------------------------------------------


class ExchangeUnavailable(GuardError):
    """The exchange did not answer, or answered with a transient error. Retry later."""


class ExchangeRejected(GuardError):
    """The exchange answered with a deterministic error: the same request fails again."""


class FeedError(GuardError):
    """The market-data feed cannot continue (no such exchange, symbol or stream)."""


# --- fix the machine ------------------------------------------------------------------


class JournalError(GuardError):
    """The journal could not be written or read. Trading stops: nothing is safe unrecorded."""


class JournalCorrupt(JournalError):
    """The journal's hash chain or contents do not verify."""


class DaemonError(GuardError):
    """The daemon is not running, not answering, or already running."""


class JournalFailing(JournalError):
    """The journal cannot write right now (a full disk, an I/O error, a read-only filesystem). Trading is
    HALTED; what must be recorded is kept in memory and written when the journal can write again."""


class JournalRefused(GuardError):
    """The journal cannot be trusted (broken chain, cut short, rolled back, replaced): the daemon will not
    start on it. The message says what is wrong and how to inspect it."""

    exit_code = 2
