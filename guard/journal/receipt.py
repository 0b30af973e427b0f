"""A journal's receipt: what an appender awaits until its events are committed."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Generator
from typing import Any


class Receipt:
    """Completes when the appended events are committed. Await it, or call `result()`.

    A receipt made with no future (`settled`) is complete from the start: replay's batched journal, whose
    appends need no one to wait, makes no thread-safe future for each of them.
    """

    __slots__ = ("_future", "_value", "last_seq")

    def __init__(self, future: concurrent.futures.Future[int] | None, last_seq: int, value: int = 0) -> None:
        self._future = future
        self._value = value
        self.last_seq = last_seq

    @classmethod
    def settled(cls, last_seq: int, value: int) -> Receipt:
        """A receipt already complete, with `value` as its result."""
        return cls(None, last_seq, value)

    def done(self) -> bool:
        return self._future is None or self._future.done()

    def result(self, timeout: float | None = None) -> int:
        return self._value if self._future is None else self._future.result(timeout)

    def __await__(self) -> Generator[Any, None, int]:
        if self._future is None:
            yield  # an await point all the same, as a threaded commit is
            return self._value
        if self._future.done():
            # Still an await point, as a threaded commit is: other tasks (a kill) may run here.
            yield
            return self._future.result()
        return (yield from asyncio.wrap_future(self._future).__await__())


def settle_future(future: concurrent.futures.Future[int], result: int = 0, error: BaseException | None = None) -> None:
    """Complete a receipt's future. A waiter cancelled at shutdown cancels it too (asyncio.wrap_future): the
    rows are committed all the same, and the writer thread must not die of the InvalidStateError."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass
