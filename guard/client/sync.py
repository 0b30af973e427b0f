"""The same client for programs that are not asyncio (a freqtrade strategy, a script).

    with GuardClient(source="my-bot") as client:
        pid = client.propose("BTC/USDT:USDT", "buy", qty="0.01", why="breakout")
        decision = client.wait_decision(pid, timeout=120)

Each call runs the asyncio client's coroutine on a private event loop in a background thread, so it works
whether or not the calling thread runs an event loop of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from guard.api.source_views import AccountView, ProposalFate
from guard.client.aio import AsyncGuardClient, Number
from guard.client.connection import Connection
from guard.client.decisions import Decision, ProposalId

T = TypeVar("T")


class GuardClient:
    """`AsyncGuardClient`'s methods, blocking. Close it (or use it as a context manager) to stop its thread."""

    def __init__(
        self,
        source: str | None = None,
        *,
        home: str | Path | None = None,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Arguments as `AsyncGuardClient`'s."""
        self.aio = AsyncGuardClient(source, home=home, url=url, token=token, timeout=timeout)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> GuardClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def connection(self) -> Connection:
        return self.aio.connection()

    def propose(
        self,
        symbol: str,
        side: str,
        *,
        qty: Number | None = None,
        notional: Number | None = None,
        equity_fraction: Number | None = None,
        leverage: Number = 1,
        stop: Number | None = None,
        take_profit: Number | None = None,
        limit_price: Number | None = None,
        confidence: Number | None = None,
        why: str = "",
    ) -> ProposalId:
        """See `AsyncGuardClient.propose`."""
        return self._run(
            self.aio.propose(
                symbol,
                side,
                qty=qty,
                notional=notional,
                equity_fraction=equity_fraction,
                leverage=leverage,
                stop=stop,
                take_profit=take_profit,
                limit_price=limit_price,
                confidence=confidence,
                why=why,
            )
        )

    def ask(self, symbol: str, side: str, *, timeout: float, **terms: Any) -> Decision:
        """See `AsyncGuardClient.ask`."""
        return self._run(self.aio.ask(symbol, side, timeout=timeout, **terms))

    def wait_decision(self, proposal_id: str, timeout: float) -> Decision:
        """See `AsyncGuardClient.wait_decision`."""
        return self._run(self.aio.wait_decision(proposal_id, timeout))

    def proposal(self, proposal_id: str) -> ProposalFate:
        return self._run(self.aio.proposal(proposal_id))

    def my_proposals(self, limit: int = 50) -> tuple[ProposalFate, ...]:
        return self._run(self.aio.my_proposals(limit))

    def status(self) -> AccountView:
        return self._run(self.aio.status())

    def close(self) -> None:
        """Stop the background loop (the client can be used again: it starts a new one)."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            loop.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._running_loop()).result()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="guard-client", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop
