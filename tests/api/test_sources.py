"""A source's credential against a real daemon: it proposes (as a command or a webhook) and reads the market and
nothing else; every operator command it tries over REST or WebSocket is refused, journaled, and changes nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from guard.api.client import ApiClient
from guard.api.credentials import CredentialStore, Scope
from guard.api.protocol import (
    COMMAND_TYPES,
    Acknowledge,
    AmendOrder,
    Approve,
    CancelOrder,
    ClosePosition,
    Command,
    Kill,
    Override,
    PauseModel,
    Propose,
    Rearm,
    ReenableThrottle,
    Reject,
    Reply,
    ResumeModel,
    ResumeSource,
    SetRiskLimit,
    decode_message,
    encode,
)
from guard.approval.desk import REARM_PHRASE
from guard.daemon import Daemon, running
from guard.domain import AcknowledgmentKind, OverrideEdits, ProposalStatus, Side
from guard.events import CommandRefused, SourcePaused
from guard.journal.chain import read_entries
from tests.api.support import queue_proposal, wait_until
from tests.builders import daemon_config

SYMBOL = "BTC/USDT:USDT"
DOC = (Path(__file__).resolve().parents[2] / "docs" / "sources-gate.md").read_text()
"""The user's page on sources: its webhook example is posted as it stands."""
STATE = ("trading_state", "orders", "account", "risk_limits", "model_paused", "acknowledgments", "paused_sources")
"""What an operator command could change, and a source must not."""


def operator_commands(pid: str) -> list[Command]:
    """One of every command only a person may send."""
    return [
        Approve("c1", pid, 1),
        Override("c2", pid, 1, OverrideEdits(qty=Decimal("0.005"))),
        Reject("c3", pid),
        Kill("c4"),
        Rearm("c5", REARM_PHRASE),
        PauseModel("c6"),
        ResumeModel("c7"),
        ClosePosition("c8", SYMBOL),
        SetRiskLimit("c9", "max_leverage", "20"),
        Acknowledge("c10", AcknowledgmentKind.LEVERAGE, "I UNDERSTAND LEVERAGE CAN LIQUIDATE ME"),
        ReenableThrottle("c11"),
        ResumeSource("c12", "freqtrade", "resume myself"),
        CancelOrder("c13", f"{pid}-E", "not mine to cancel"),
        AmendOrder("c14", f"{pid}-E", price=Decimal(1), reason="not mine to move"),
    ]


class Source:
    """A program holding a source's token, speaking plain HTTP to the daemon's socket (as any program would)."""

    def __init__(self, daemon: Daemon, name: str) -> None:
        store = CredentialStore(daemon.paths.root)
        store.add(name, Scope.SOURCE)
        self.name = name
        self.token = store.token_file(name, Scope.SOURCE).read_text().strip()
        self.socket = str(daemon.paths.socket)

    def session(self, token: str | None = None) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=self.socket),
            headers={"Authorization": f"Bearer {token or self.token}"},
        )

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        async with self.session(token) as http, http.request(method, f"http://guard{path}", data=data) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def command(self, command: Command) -> Reply:
        async with self.session() as http, http.post("http://guard/v1/commands", data=encode(command)) as response:
            reply = decode_message(await response.read())
        assert isinstance(reply, Reply) and response.status in (200, 400)
        return reply


@pytest.fixture
async def daemon(guard_home: Path) -> AsyncIterator[Daemon]:
    async with running(daemon_config()) as d:
        assert d.hub is not None and d.desk is not None
        d.hub.presence.heard_from("alice")
        await wait_until(lambda: SYMBOL in d.desk.marks)
        yield d


def journal(daemon: Daemon) -> list:
    return [e.event for e in read_entries(daemon.paths.journal)]


async def test_a_source_tries_every_operator_command_over_rest_and_websocket_and_changes_nothing(
    daemon: Daemon,
) -> None:
    """Every command but Propose, over REST and over a WebSocket: each refused, each refusal journaled naming the
    source, the command and why; trading state, positions, limits, acknowledgments and the queue are as they were."""
    assert daemon.desk is not None and daemon.hub is not None
    bot = Source(daemon, "freqtrade")
    mine = await bot.command(Propose("p1", SYMBOL, Side.BUY, notional=Decimal(700), reason="cross"))
    assert mine.ok, mine.reason
    pid = await queue_proposal(daemon)  # the model's, whose fate is not the source's to decide
    commands = operator_commands(pid)
    assert {type(c).__name__ for c in commands} == set(COMMAND_TYPES) - {"Hello", "Heartbeat", "Propose"}
    before = daemon.desk.state.snapshot()

    for command in commands:
        reply = await bot.command(command)
        assert not reply.ok and "may propose" in reply.reason, type(command).__name__
    async with bot.session() as http, http.ws_connect("http://guard/v1/ws") as ws:
        await ws.send_str(encode_hello("freqtrade"))
        first = decode_message((await ws.receive()).data)
        assert isinstance(first, Reply) and first.ok, "a source gets no snapshot of the operators' views"
        for command in commands:
            await ws.send_str(encode(command))
            reply = decode_message((await asyncio.wait_for(ws.receive(), 10)).data)
            assert isinstance(reply, Reply) and not reply.ok and reply.id == command.id, type(command).__name__
        await ws.send_str(encode(Propose("p2", SYMBOL, Side.SELL, equity_fraction=Decimal("0.01"), reason="ws")))
        proposed = decode_message((await asyncio.wait_for(ws.receive(), 10)).data)
        assert isinstance(proposed, Reply) and proposed.ok, "proposing is what its WebSocket is for"
    assert "freqtrade" not in daemon.hub.presence.operators(), "a program keeps no dead-man switch alive"

    refused = [e for e in journal(daemon) if isinstance(e, CommandRefused) and e.operator == "freqtrade"]
    assert sorted(e.command for e in refused) == sorted(2 * [type(c).__name__ for c in commands])
    assert all("freqtrade holds a source credential" in e.reason for e in refused)
    after = daemon.desk.state.snapshot()
    for key in STATE:
        assert after.get(key) == before.get(key), key
    assert daemon.desk.state.proposals[pid].status is ProposalStatus.PENDING


def encode_hello(name: str) -> str:
    return json.dumps({"v": 2, "type": "Hello", "id": "h1", "operator": name, "client": "bot"})


async def test_a_source_reads_the_market_and_nothing_an_operator_sees(daemon: Daemon) -> None:
    """The market (and its own standing) is readable; the snapshot, the model's card and record, the metrics and
    a WebSocket hello in another's name are not, and each refused read is journaled."""
    bot = Source(daemon, "script")
    status, market = await bot.call("GET", "/v1/market")
    assert status == 200 and market["trading_state"] == "ACTIVE"
    assert {m["symbol"] for m in market["markets"]} >= {SYMBOL} and market["source"]["name"] == "script"
    assert "proposals" not in market and "positions" not in market
    for path in ("/v1/snapshot", "/v1/model/card", "/v1/model/performance", "/metrics"):
        status, body = await bot.call("GET", path)
        assert status == 403 and "may propose" in body["error"], path
    refused = [e.command for e in journal(daemon) if isinstance(e, CommandRefused) and e.operator == "script"]
    assert refused == ["GET /v1/snapshot", "GET /v1/model/card", "GET /v1/model/performance", "GET /metrics"]
    async with bot.session() as http, http.ws_connect("http://guard/v1/ws") as ws:
        await ws.send_str(encode_hello("alice"))
        reply = decode_message((await ws.receive()).data)
        assert isinstance(reply, Reply) and not reply.ok and "own credential" in reply.reason


async def test_a_charting_alert_proposes_through_the_webhook(daemon: Daemon) -> None:
    """TradingView-style JSON (a chart's symbol, LONG, numbers as strings, "why") is queued as the source's
    proposal, sized from its notional; 202 with the proposal id."""
    assert daemon.desk is not None
    tv = Source(daemon, "tv")
    mark = daemon.desk.marks[SYMBOL]
    alert = {
        "symbol": "BINANCE:BTCUSDT.P",
        "side": "LONG",
        "notional": "500",
        "leverage": 2,
        "why": "breakout",
        "confidence": "0.7",
        "stop": str(round(mark * Decimal("0.98"))),
    }
    status, body = await tv.call("POST", "/v1/sources/tv/proposals", alert)
    assert status == 202, body
    p = daemon.desk.state.proposals[body["proposal_id"]].proposal
    assert (p.source, p.symbol, p.side, p.leverage, p.confidence) == ("tv", SYMBOL, Side.BUY, 2, 0.7)
    assert 0 < p.qty * mark <= 500 and "breakout" in p.why


@pytest.mark.parametrize(
    ("alert", "status", "says"),
    [
        ({"symbol": SYMBOL, "side": "buy", "notional": 500, "levrage": 3}, 400, "unknown key 'levrage'"),
        ({"symbol": SYMBOL, "side": "buy", "notional": 500, "stop": "{{low}}"}, 400, "stop: expected a number"),
        ({"symbol": SYMBOL, "side": "buy"}, 400, "exactly one size"),
        ({"symbol": SYMBOL, "side": "buy", "qty": 1, "notional": 500}, 400, "got qty and notional"),
        ({"symbol": SYMBOL, "side": "hold", "notional": 500}, 400, "not a side"),
        ({"symbol": "DOGEUSDT", "side": "buy", "notional": 500}, 400, "not traded here"),
        ({"symbol": SYMBOL, "side": "buy", "equity_fraction": 2}, 400, "at most 1"),
        ({"symbol": SYMBOL, "side": "buy", "qty": "0.0000001"}, 422, "below the market minimum"),
        ([1, 2], 400, "one JSON object"),
    ],
)
async def test_a_webhook_says_what_to_fix(daemon: Daemon, alert: Any, status: int, says: str) -> None:
    """Unknown keys, unfilled placeholders, a missing or doubled size, an unknown side or symbol: 4xx naming it."""
    tv = Source(daemon, "tv")
    got, body = await tv.call("POST", "/v1/sources/tv/proposals", alert)
    assert (got, says in body["error"]) == (status, True), body


async def test_a_webhook_takes_only_the_named_sources_own_token(daemon: Daemon) -> None:
    """Another source's token, or an operator's, cannot post as "tv": 403, journaled."""
    tv, other = Source(daemon, "tv"), Source(daemon, "other")
    alert = {"symbol": SYMBOL, "side": "buy", "notional": 500}
    status, _ = await tv.call("POST", "/v1/sources/tv/proposals", alert, token=other.token)
    assert status == 403
    shared = ApiClient.from_config(daemon.config).endpoint().token
    status, _ = await tv.call("POST", "/v1/sources/tv/proposals", alert, token=shared)
    assert status == 403
    refused = [e for e in journal(daemon) if isinstance(e, CommandRefused) and "/v1/sources/tv" in e.command]
    assert [e.operator for e in refused] == ["other", "shared"]


async def test_a_source_flooding_over_rest_is_latched_and_a_person_resumes_it(daemon: Daemon) -> None:
    """100 proposals sent at once: at most ten are taken, the source is paused once ("flood"); an operator's
    ResumeSource lets it propose again."""
    bot = Source(daemon, "looper")
    flood = [Propose(f"f{i}", SYMBOL, Side.BUY, Decimal("0.001")) for i in range(100)]
    replies = await asyncio.gather(*(bot.command(c) for c in flood))
    assert sum(r.ok for r in replies) <= 10
    assert [(e.source, e.cause) for e in journal(daemon) if isinstance(e, SourcePaused)] == [("looper", "flood")]
    alice = ApiClient.from_config(daemon.config)
    assert (await alice.command(ResumeSource("r1", "looper", "fixed"), "alice")).ok
    assert (await bot.command(Propose("again", SYMBOL, Side.SELL, Decimal("0.001")))).ok


async def test_the_documented_webhook_example_is_queued(daemon: Daemon) -> None:
    """The alert JSON in docs/sources-gate.md, posted as it stands, is queued (202) as the source's proposal."""
    example = DOC.split("## Webhooks", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    tv = Source(daemon, "tv-alerts")
    status, body = await tv.call("POST", "/v1/sources/tv-alerts/proposals", example)
    assert status == 202, body
    assert daemon.desk is not None and daemon.desk.state.proposals[body["proposal_id"]].proposal.source == "tv-alerts"
