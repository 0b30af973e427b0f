"""`guard mcp` end to end with the mcp package's own stdio client, started exactly as docs/sources.md's
`mcpServers` entry says: an agent proposes, a person decides over the control API, and the agent learns the
outcome; nothing in the agent's reach decides or executes."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from guard.api.client import ApiClient, Session
from guard.api.credentials import CredentialStore, Scope
from guard.api.protocol import Approve, ProposalsChanged, Reject
from guard.cli import main
from guard.daemon import running
from guard.domain import TradingState
from guard.events import ProposalQueued
from guard.journal.chain import read_entries
from tests.api.support import wait_for, wait_until
from tests.builders import daemon_config
from tests.doc_examples import example

SYMBOL = "BTC/USDT:USDT"
AGENT_TOOLS = {"market_status", "positions", "my_proposals", "proposal_status", "propose", "wait_for_decision"}
OPERATOR_ACTIONS = ("approve", "reject", "override", "kill", "rearm", "close_position", "set_risk_limit")


@asynccontextmanager
async def agent(home: Path) -> AsyncIterator[ClientSession]:
    """An MCP client session with `guard mcp`, started as the doc's mcpServers entry tells an agent's host to
    (this environment's `guard`, the entry's arguments, GUARD_HOME pointed at the test's daemon)."""
    entry = json.loads(example("mcp-config").split("\n", 1)[1])["mcpServers"]["guard"]
    params = StdioServerParameters(
        command=str(Path(sys.executable).parent / entry["command"]),
        args=entry["args"],
        env={**entry["env"], "GUARD_HOME": str(home)},
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error_text(result: Any) -> str:
    assert result.is_error
    return str(result.content[0].text)


async def next_proposal(operator: Session) -> str:
    changed = await wait_for(operator, lambda m: isinstance(m, ProposalsChanged) and bool(m.upserted))
    assert isinstance(changed, ProposalsChanged)
    return changed.upserted[0].proposal.id


async def test_mcp_agent_proposes_a_person_decides_and_the_agent_sees_the_fill_and_the_reason(
    guard_home: Path,
) -> None:
    """The agent's tools read and propose only (operator actions are not tools, and the descriptions say a person
    decides); with nobody attached its proposal is refused with the reason; then a person approves one proposal
    (the agent sees the fill) and rejects another (the agent sees the reason). The journal names the agent."""
    async with running(daemon_config(approval={"ttl_seconds": 60})) as daemon:
        CredentialStore(daemon.paths.root).add("agent", Scope.SOURCE)
        await wait_until(lambda: SYMBOL in daemon.desk.marks)
        async with agent(guard_home) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            assert set(tools) == AGENT_TOOLS
            assert "does NOT trade" in (tools["propose"].description or "")
            assert "A person decides every trade" in (session.instructions or "")
            for action in OPERATOR_ACTIONS:
                assert "Unknown tool" in error_text(await session.call_tool(action, {"proposal_id": "P000001"}))
            alone = await session.call_tool("propose", {"symbol": SYMBOL, "side": "buy", "qty": 0.01, "why": "x"})
            assert "no operator is attached" in error_text(alone)

            async with ApiClient.from_config(daemon.config).connect("alice") as alice:
                status = await call(session, "market_status")
                assert status["trading_state"] == "ACTIVE" and status["operator_present"]
                assert SYMBOL in status["marks"]

                proposed = await call(session, "propose", symbol=SYMBOL, side="buy", qty="0.01", why="momentum")
                pid = proposed["proposal_id"]
                assert "a person decides" in proposed["next"]
                assert await next_proposal(alice) == pid
                waiting = asyncio.create_task(call(session, "wait_for_decision", proposal_id=pid, timeout_seconds=30))
                assert (await alice.send(Approve(alice.next_id(), pid, 1, "agreed"))).ok
                filled = await waiting
                assert (filled["outcome"], filled["decided_by"]) == ("filled", "alice")
                assert Decimal(filled["qty"]) == Decimal("0.01") and Decimal(filled["price"]) > 0

                second = await call(session, "propose", symbol=SYMBOL, side="sell", qty="0.01", why="reversal")
                assert await next_proposal(alice) == second["proposal_id"]
                assert (await alice.send(Reject(alice.next_id(), second["proposal_id"], "against the trend"))).ok
                rejected = await call(
                    session, "wait_for_decision", proposal_id=second["proposal_id"], timeout_seconds=30
                )
                assert (rejected["outcome"], rejected["reason"]) == ("rejected", "against the trend")

                mine = await call(session, "my_proposals")
                assert [p["status"] for p in mine["proposals"]] == ["REJECTED", "FILLED"]
                held = await call(session, "positions")
                assert [p["position"]["symbol"] for p in held["positions"]] == [SYMBOL]
        assert daemon.desk.state.trading_state is TradingState.ACTIVE
    queued = [e.event for e in read_entries(daemon.paths.journal) if isinstance(e.event, ProposalQueued)]
    assert [q.proposal.source for q in queued] == ["agent", "agent"]


def test_mcp_without_a_source_says_how_to_name_one(
    guard_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`guard mcp` with no source and no token exits 2 and says which flag to give (nothing reaches stdout,
    which belongs to the protocol)."""
    monkeypatch.delenv("GUARD_SOURCE", raising=False)
    monkeypatch.delenv("GUARD_TOKEN", raising=False)
    assert main(["mcp"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "guard mcp --source NAME" in captured.err


async def test_mcp_with_no_daemon_tells_the_agent_what_to_do(guard_home: Path) -> None:
    """`guard mcp` serves even when no daemon runs; a tool then answers with an error saying to start one."""
    CredentialStore(guard_home).add("agent", Scope.SOURCE)
    async with agent(guard_home) as session:
        text = error_text(await session.call_tool("market_status", {}))
    assert "no daemon is running" in text and "guard up" in text
