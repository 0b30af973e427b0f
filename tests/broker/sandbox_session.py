"""A desk sending one order through the sandbox broker, in its own process, for the SIGKILL restart test:
`python -m tests.broker.sandbox_session JOURNAL SIM_URL`.

It prints `READY <journal id>`, waits for a line on stdin (the test injects a fault for the order's client id
meanwhile), then sends `g<journal id>-R1`; the test SIGKILLs it while the venue holds the answer.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from guard.feed.process import Endpoint
from guard.logs import configure
from tests.broker.sandbox_support import SLOW_ANSWERS, order, sandbox_desk


async def session(path: Path, url: str) -> None:
    sim = Endpoint(url, url.replace("http://", "ws://", 1))
    async with sandbox_desk(path, sim, settings=SLOW_ANSWERS) as desk:  # type: ignore[arg-type]
        print(f"READY {desk.state.journal_id}", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await desk.execution.send(order(f"g{desk.state.journal_id}-R1"))
        print("ANSWERED", flush=True)  # never reached: the test kills this process first


if __name__ == "__main__":
    configure(level="warning", fmt="json")  # logs to stderr; stdout carries only READY
    asyncio.run(session(Path(sys.argv[1]), sys.argv[2]))
