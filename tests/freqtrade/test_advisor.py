"""freqtrade advisor mode against the real freqtrade package: a backtest whose entries wait on a person.

freqtrade's Binance, pointed at guard's simulated exchange (offline), backtests docs/sources.md's strategy on
candles with one entry signal per pair; each entry is proposed to a real daemon, where a scripted operator
approves BTC, rejects ETH and leaves SOL unanswered. freqtrade enters only what guard filled.

freqtrade is large: this runs only with GUARD_FREQTRADE_TESTS=1 (see tests/freqtrade/support.py).
"""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal
from pathlib import Path

import pytest

from guard.api.client import ApiClient, Session
from guard.api.credentials import CredentialStore, Scope
from guard.api.protocol import Approve, ProposalsChanged, Reject
from guard.daemon import running
from guard.domain import ProposalStatus
from tests.api.support import wait_until
from tests.builders import daemon_config
from tests.doc_examples import example
from tests.freqtrade.support import backtest_command, freqtrade_python, trades, user_data

pytestmark = pytest.mark.skipif(
    not os.environ.get("GUARD_FREQTRADE_TESTS"),
    reason="set GUARD_FREQTRADE_TESTS=1 to install the real freqtrade (~770 MB, cached) and backtest through guard",
)

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
JUMPS = {BTC: (84000.0, 20), ETH: (3000.0, 40), SOL: (150.0, 60)}
"""Each pair's price and the candle of its one entry signal: BTC first, then ETH, then SOL."""


async def operator(session: Session, seen: list[str]) -> None:
    """A person at the console: approves BTC, rejects ETH, does not answer SOL."""
    async for message in session.messages():
        if not isinstance(message, ProposalsChanged):
            continue
        for view in message.upserted:
            p = view.proposal
            if p.id in seen or view.status is not ProposalStatus.PENDING:
                continue
            seen.append(p.id)
            if p.symbol == BTC:
                await session.send(Approve(session.next_id(), p.id, p.version, "agreed"))
            elif p.symbol == ETH:
                await session.send(Reject(session.next_id(), p.id, "not this one"))


@pytest.mark.timeout(2400)
async def test_freqtrade_backtest_enters_only_what_a_person_approved(guard_home: Path, tmp_path: Path) -> None:
    """Three entry signals: the approved one is filled by guard and is freqtrade's only trade; the rejected and
    the unanswered (expired) ones are not entered."""
    python = await asyncio.to_thread(freqtrade_python)
    async with running(daemon_config(approval={"ttl_seconds": 3})) as daemon:
        CredentialStore(daemon.paths.root).add("freqtrade", Scope.SOURCE)
        await wait_until(lambda: all(s in daemon.desk.marks for s in JUMPS), within=30)
        user = await asyncio.to_thread(
            user_data, tmp_path, example("freqtrade-strategy"), python, daemon.sim.url, JUMPS
        )
        env = {**os.environ, "GUARD_HOME": str(guard_home), "GUARD_SOURCE": "freqtrade"}
        async with ApiClient.from_config(daemon.config).connect("alice") as alice:
            seen: list[str] = []
            person = asyncio.create_task(operator(alice, seen))
            proc = await asyncio.create_subprocess_exec(
                *backtest_command(python, user),
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            output, _ = await asyncio.wait_for(proc.communicate(), 900)
            person.cancel()
        text = output.decode(errors="replace")
        assert proc.returncode == 0 and "BACKTESTING REPORT" in text, text[-4000:]
        fates = {r.proposal.symbol: r for r in daemon.desk.state.proposals.values()}
        assert {s: r.status for s, r in fates.items()} == {
            BTC: ProposalStatus.FILLED,
            ETH: ProposalStatus.REJECTED,
            SOL: ProposalStatus.EXPIRED,
        }, text[-4000:]
        assert all(r.proposal.source == "freqtrade" for r in fates.values())
        assert fates[ETH].reason == "not this one"
        btc_qty = fates[BTC].proposal.qty
    made = await asyncio.to_thread(trades, python, user)
    assert [t["pair"] for t in made] == [BTC], text[-4000:]
    assert abs(Decimal(str(made[0]["amount"])) - btc_qty) < Decimal("0.001")
