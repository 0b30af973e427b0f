"""guard's errors, grouped by what the operator has to do about them.

Business refusals (a risk check blocks, the collar is breached) are returned values, not
exceptions. Exceptions are for input that is wrong and for things that failed. Vendor errors
(ccxt, aiohttp, sqlite3, torch) are translated at the edge with `raise ... from e`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_SECRET_KEY = re.compile(r"(secret|token|password|passphrase|api_?key|apikey|private)", re.I)


class GuardError(Exception):
    """Base of every error guard raises on purpose."""

    exit_code = 1


# --- fix your input -------------------------------------------------------------------


class BadInput(GuardError):
    """Input that guard refuses: the message says what was wrong and what is allowed."""

    exit_code = 2


SHOWN_VALUE_CHARS = 80
"""A config value is shown up to this many characters: a 4,000-digit number must not flood the screen."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a config: the key, the value and what is allowed (or what is wrong)."""

    key: str
    value: object
    allowed: str

    def __str__(self) -> str:
        if _SECRET_KEY.search(self.key):
            return (
                f"{self.key} = [redacted]: {self.allowed}; "
                "API keys come from environment variables only, never from a config file"
            )
        shown = repr(self.value)
        if len(shown) > SHOWN_VALUE_CHARS:
            shown = f"{shown[: SHOWN_VALUE_CHARS - 1]}…"
        return f"{self.key} = {shown}: {self.allowed}"


class ConfigError(BadInput):
    """A config that cannot be used. Names the key, the value and what is allowed.

    A config with several problems is refused with all of them at once (`problems`; the message
    counts them, then gives one indented line each); `key`, `value` and `allowed` are the first one's.
    """

    def __init__(
        self, key: str, value: object, allowed: str, source: str = "", *, more: Sequence[ConfigProblem] = ()
    ) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        self.source = source
        self.problems: tuple[ConfigProblem, ...] = (ConfigProblem(key, value, allowed), *more)
        if more:
            where = f"{source}: " if source else ""
            super().__init__(f"{where}{len(self.problems)} problems:\n" + "\n".join(f"  {p}" for p in self.problems))
        else:
            super().__init__(self.lines()[0])

    @classmethod
    def of(cls, problems: Sequence[ConfigProblem], source: str = "") -> ConfigError:
        """One error for every problem found (at least one), in the order given."""
        first, *more = problems
        return cls(first.key, first.value, first.allowed, source, more=more)

    def lines(self) -> list[str]:
        """One line per problem: `source: key = value: allowed`."""
        where = f"{self.source}: " if self.source else ""
        return [f"{where}{problem}" for problem in self.problems]


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
