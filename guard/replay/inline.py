"""Running the desk inline: a journal that never makes anyone wait, and coroutines driven to their end.

Replay drives the very `ApprovalDesk` the daemon runs. Its journal commits inline with rows
batched (nothing leaves the process, so nothing needs to wait for a commit), and its broker
answers at once; so every await inside the desk finishes immediately, and replay runs each
desk call to completion on its own thread instead of turning an event loop once per await.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from guard import collector
from guard.events import Event
from guard.journal.store import Journal

T = TypeVar("T")

BATCH_ROWS = 4096
PAGE_SIZE = 65536
"""The replay's journal is written in SQLite's largest pages: a quarter of the WAL frames and write calls of
4 KiB pages, which made writing a row 4.5 -> 2.9 us. The daemon's journal keeps small pages: its commits are a
few rows each, fsynced, and a larger page would be more bytes to sync for each."""


class ReplayJournal(Journal):
    """The replay's journal: inline, synchronous=NORMAL, batched commits; it hands every appended
    event to the replay's counters and auditor as it is appended (no subscriber `Entry` objects)."""

    def __init__(self, path: Path, on_events: Callable[[Sequence[Event]], None]) -> None:
        super().__init__(
            path,
            synchronous="normal",
            threaded=False,
            batch_rows=BATCH_ROWS,
            page_size=PAGE_SIZE,
            on_events=on_events,
        )


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run one desk coroutine to its end on this thread, without an event-loop turn per await.

    Every await inside the desk finishes at once or yields bare (a committed `Receipt` still
    yields once). Anything that would really wait (a future, a sleep) has no place in a replay:
    it raises instead of hanging.
    """
    try:
        while True:
            if coro.send(None) is not None:
                coro.close()
                raise RuntimeError("replay: the desk awaited something that was not ready")
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


YOUNG_EVERY = 5_000
"""Bar closes worked between two young-generation collections while a replay runs."""


class YoungCollections:
    """While a replay runs: only young garbage collections, every `YOUNG_EVERY` steps.

    A replay keeps tens of thousands of records alive (every proposal and order it journaled,
    folded into the desk's state), nearly all without reference cycles. Python's full
    collections re-scan all of them each time the heap grows by a quarter: about a seventh of a
    long replay's time. Young collections still reclaim the short-lived cycles; the automatic
    collector (process-wide) is restored as it was when the replay ends.
    """

    def __init__(self) -> None:
        self._steps = 0

    def step(self) -> None:
        self._steps += 1
        if self._steps % YOUNG_EVERY == 0:
            gc.collect(1)

    @staticmethod
    @contextlib.contextmanager
    def running() -> Iterator[YoungCollections]:
        with collector.paused():
            yield YoungCollections()
