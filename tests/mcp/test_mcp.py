"""`guard mcp` end to end with the mcp package's own stdio client: an agent proposes, a person decides over
the control API, and the agent learns the outcome; nothing in the agent's reach decides or executes."""

from __future__ import annotations

import asyncio
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

SYMBOL = "BTC/USDT:USDT"
AGENT_TOOLS = {"market_status", "positions", "my_proposals", "proposal_status", "propose", "wait_for_decision"}


@asynccontextmanager
async def agent(home: Path, source: str = "agent") -> AsyncIterator[ClientSession]:
    """An MCP client session with `guard mcp`, started as an agent's host starts it: a subprocess on stdio."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "guard", "mcp", "--source", source], env={"GUARD_HOME": str(home)}
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def next_proposal(operator: Session) -> str:
    changed = await wait_for(operator, lambda m: isinstance(m, ProposalsChanged) and bool(m.upserted))
    assert isinstance(changed, ProposalsChanged)
    return changed.upserted[0].proposal.id


async def test_mcp_agent_proposes_a_person_approves_and_rejects_and_the_agent_sees_each_outcome(
    guard_home: Path,
) -> None:
    """The agent proposes twice: the person approves one (the agent sees the fill) and rejects the other (the
    agent sees the reason); the journal names the agent as the proposals' source."""
    async with running(daemon_config(approval={"ttl_seconds": 60})) as daemon:
        CredentialStore(daemon.paths.root).add("agent", Scope.SOURCE)
        await wait_until(lambda: SYMBOL in daemon.desk.marks)
        async with ApiClient.from_config(daemon.config).connect("alice") as alice, agent(guard_home) as session:
            status = await call(session, "market_status")
            assert status["trading_state"] == "ACTIVE" and status["operator_present"] and SYMBOL in status["marks"]

            proposed = await call(session, "propose", symbol=SYMBOL, side="buy", qty="0.01", why="momentum")
            pid = proposed["proposal_id"]
            assert "a person decides" in proposed["next"]
            assert await next_proposal(alice) == pid
            waiting = asyncio.create_task(call(session, "wait_for_decision", proposal_id=pid, timeout_seconds=30))
            assert (await alice.send(Approve(alice.next_id(), pid, 1, "agreed"))).ok
            filled = await waiting
            assert (filled["outcome"], Decimal(filled["qty"]), filled["decided_by"]) == (
                "filled",
                Decimal("0.01"),
                "alice",
            )
            assert float(filled["price"]) > 0

            second = await call(session, "propose", symbol=SYMBOL, side="sell", qty="0.01", why="reversal")
            assert await next_proposal(alice) == second["proposal_id"]
            assert (await alice.send(Reject(alice.next_id(), second["proposal_id"], "against the trend"))).ok
            rejected = await call(session, "wait_for_decision", proposal_id=second["proposal_id"], timeout_seconds=30)
            assert (rejected["outcome"], rejected["reason"]) == ("rejected", "against the trend")

            mine = await call(session, "my_proposals")
            assert [p["status"] for p in mine["proposals"]] == ["REJECTED", "FILLED"]
            held = await call(session, "positions")
            assert [p["position"]["symbol"] for p in held["positions"]] == [SYMBOL]
    queued = [e.event for e in read_entries(daemon.paths.journal) if isinstance(e.event, ProposalQueued)]
    assert [q.proposal.source for q in queued] == ["agent", "agent"]


async def test_mcp_offers_no_operator_action_and_its_descriptions_say_a_person_decides(guard_home: Path) -> None:
    """The agent's tools read and propose only; approving, rejecting or killing are not tools at all, and the
    descriptions tell the agent that a person decides. A refused proposal reaches the agent as a tool error."""
    async with running(daemon_config()) as daemon:
        CredentialStore(daemon.paths.root).add("agent", Scope.SOURCE)
        async with agent(guard_home) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            assert set(tools) == AGENT_TOOLS
            assert "does NOT trade" in (tools["propose"].description or "")
            assert "A person decides every trade" in (session.instructions or "")
            for operator_action in ("approve", "reject", "override", "kill", "rearm", "close_position"):
                result = await session.call_tool(operator_action, {"proposal_id": "P000001"})
                assert result.is_error and "Unknown tool" in result.content[0].text  # type: ignore[union-attr]
            refused = await session.call_tool("propose", {"symbol": SYMBOL, "side": "buy", "qty": "0.01", "why": "x"})
            assert refused.is_error and "no operator is attached" in refused.content[0].text  # type: ignore[union-attr]
        assert daemon.desk.state.trading_state is TradingState.ACTIVE and not daemon.desk.state.proposals


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
