"""Python's cyclic garbage collector, kept away from the moments where its pauses hurt.

A full collection scans every live container object; in a process holding torch, ccxt, the model
and a long session's state that is a stall of tens to hundreds of milliseconds. Long-lived objects
are frozen out of its sight once, and the few latency-critical stretches (a kill, a replay) run
with automatic collection paused.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No automatic collection inside; the collector is left as it was found (a caller may have turned it off)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def freeze_long_lived() -> None:
    """Take everything alive now out of the collector's sight for good: for what startup built and the
    process keeps to its end. Collected once first, as garbage frozen with the rest would never be freed."""
    gc.collect()
    gc.freeze()
