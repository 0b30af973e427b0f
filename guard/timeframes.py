"""Bar lengths: the one definition the feed, the simulator, history files, features, the model and replay read.

`TIMEFRAME_MS` names every timeframe guard knows; `Timeframe` is one of them as a value;
`timeframe_ms` looks one up by name and refuses an unknown one with the list of allowed names.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from guard.domain import Value
from guard.errors import InvalidMarketData

TIMEFRAME_MS: Mapping[str, int] = MappingProxyType(
    {
        "1m": 60_000,
        "3m": 180_000,
        "5m": 300_000,
        "15m": 900_000,
        "30m": 1_800_000,
        "1h": 3_600_000,
        "2h": 7_200_000,
        "4h": 14_400_000,
        "6h": 21_600_000,
        "8h": 28_800_000,
        "12h": 43_200_000,
        "1d": 86_400_000,
    }
)
"""Every timeframe guard knows, by its ccxt name, in milliseconds, shortest first.

Each divides a UTC day, so bars open at the same instants as on the venues (weeks and months,
which do not, are left out)."""


class Timeframe(Value, frozen=True):
    """A bar length guard knows: its ccxt name and its milliseconds."""

    name: str
    ms: int

    @classmethod
    def parse(cls, name: str) -> Timeframe:
        """The timeframe called `name` ("1m", "5m", "1h", "1d", ...).

        Raises:
            InvalidMarketData: for a name guard does not know (the message lists the allowed ones).
        """
        return cls(name, timeframe_ms(name))

    @classmethod
    def of_ms(cls, ms: int) -> Timeframe | None:
        """The timeframe exactly `ms` long, or None."""
        for name, length in TIMEFRAME_MS.items():
            if length == ms:
                return cls(name, length)
        return None

    @property
    def seconds(self) -> float:
        return self.ms / 1000.0

    def open_time(self, timestamp_ms: int) -> int:
        """The open time of the bar holding `timestamp_ms` (bars are aligned to the Unix epoch)."""
        return timestamp_ms - timestamp_ms % self.ms

    def __str__(self) -> str:
        return self.name


def timeframe_ms(name: str) -> int:
    """Milliseconds in the timeframe `name` ("1m" → 60000).

    Raises:
        InvalidMarketData: for a name guard does not know (the message lists the allowed ones).
    """
    try:
        return TIMEFRAME_MS[name]
    except (KeyError, TypeError):
        raise InvalidMarketData(f"timeframe {name!r}: must be one of {', '.join(TIMEFRAME_MS)}") from None
