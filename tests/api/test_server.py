"""The control API against a real daemon over its unix socket: operators, decisions, auth, bad frames."""

from __future__ import annotations

import asyncio
import json
import stat
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from guard.api.client import ApiClient
from guard.api.clients import Presence
from guard.api.credentials import CredentialStore, Scope
from guard.api.protocol import (
    OPERATOR_HEADER,
    Approve,
    EventsLogged,
    Kill,
    LoggedEvent,
    ProposalsChanged,
    Propose,
    Rearm,
    Reject,
    SetRiskLimit,
    StatusChanged,
    encode,
)
from guard.api.server import ApiServer
from guard.approval.state import GuardState
from guard.config import ApiSection
from guard.daemon import Daemon, running
from guard.domain import ProposalStatus, Side, TradingState
from guard.errors import DaemonError
from guard.events import DecisionRecorded
from guard.journal.chain import read_entries
from guard.paths import StatePaths
from tests.api.support import queue_proposal, wait_for, wait_until
from tests.builders import daemon_config


async def test_snapshot_on_connect_then_views_as_things_happen(daemon: Daemon, client: ApiClient) -> None:
    """A client gets the whole picture on connect, then each new proposal as a view with what it may do."""
    async with client.connect("alice") as session:
        assert session.snapshot is not None
        assert session.snapshot.status.trading_state is TradingState.ACTIVE
        pid = await queue_proposal(daemon)
        change = await wait_for(session, lambda m: isinstance(m, ProposalsChanged) and bool(m.upserted))
        view = change.upserted[0]
        assert (view.proposal.id, view.can_approve, view.why_not) == (pid, True, "")
        assert view.fee_estimate > 0 and view.liquidation_distance_pct is not None


async def test_a_change_of_limits_resends_only_the_proposal_views_it_changed(daemon: Daemon, client: ApiClient) -> None:
    """A limit or state change re-judges every pending proposal, but clients are sent only the views that changed:
    with a thousand pending, resending all of them on every change would flood every screen."""
    async with client.connect("alice") as session:
        btc = await queue_proposal(daemon, qty="0.01")
        eth = await queue_proposal(daemon, symbol="ETH/USDT:USDT", qty="0.01")
        await wait_for(
            session, lambda m: isinstance(m, ProposalsChanged) and eth in {v.proposal.id for v in m.upserted}
        )

        async def changes_until_logged(command: SetRiskLimit) -> list[ProposalsChanged]:
            assert (await session.send(command)).ok
            changes: list[ProposalsChanged] = []

            def logged(m: object) -> bool:  # collects the proposal changes pushed before the change's log line
                if isinstance(m, ProposalsChanged):
                    changes.append(m)
                return isinstance(m, EventsLogged) and any(e.type == "RiskLimitChanged" for e in m.events)

            await wait_for(session, logged)
            return changes

        more = SetRiskLimit(session.next_id(), "max_orders_per_minute", "25", confirm_risk_increase=True)
        assert await changes_until_logged(more) == []
        btc_notional = daemon.desk.state.proposals[btc].proposal.notional
        eth_notional = daemon.desk.state.proposals[eth].proposal.notional
        between = str(int((btc_notional + eth_notional) / 2))
        [changed] = await changes_until_logged(SetRiskLimit(session.next_id(), "max_order_notional", between))
        [view] = changed.upserted
        assert view.proposal.id == (btc if btc_notional > eth_notional else eth) and not view.can_approve


async def test_a_proposal_leaving_the_queue_resends_the_one_it_was_blocking(daemon: Daemon, client: ApiClient) -> None:
    """The newer of two proposals for one symbol and side is blocked as a duplicate only while the older is
    pending: once the older is decided, the newer is judged again as version 2, and every console is told it
    may now be approved."""
    async with client.connect("alice") as session:
        older = await queue_proposal(daemon, qty="0.01")
        newer = await queue_proposal(daemon, qty="0.02")
        blocked = await wait_for(
            session, lambda m: isinstance(m, ProposalsChanged) and newer in {v.proposal.id for v in m.upserted}
        )
        assert not next(v for v in blocked.upserted if v.proposal.id == newer).can_approve
        assert (await session.send(Reject(session.next_id(), older, "not this one"))).ok
        freed = await wait_for(
            session,
            lambda m: (
                isinstance(m, ProposalsChanged)
                and (newer, 2) in {(v.proposal.id, v.proposal.version) for v in m.upserted}
            ),
        )
        view = next(v for v in freed.upserted if v.proposal.id == newer)
        assert (view.can_approve, view.why_not) == (True, "")
        assert next(c for c in view.proposal.checks if c.name == "duplicate").reason == "ok"
        assert (await session.send(Approve(session.next_id(), newer, view.proposal.version))).ok


async def test_two_operators_first_decision_wins_and_both_see_it(daemon: Daemon, client: ApiClient) -> None:
    """Two operators approve at once: one order goes out, the other is told why not, both see the outcome."""
    async with client.connect("alice") as alice, client.connect("bob") as bob:
        pid = await queue_proposal(daemon)
        replies = await asyncio.gather(
            alice.send(Approve(alice.next_id(), pid, 1)), bob.send(Approve(bob.next_id(), pid, 1))
        )
        assert sorted(r.ok for r in replies) == [False, True]
        loser = next(r for r in replies if not r.ok)
        assert "not PENDING" in loser.reason
        for session in (alice, bob):
            await wait_for(session, lambda m: isinstance(m, ProposalsChanged) and pid in m.removed)
        decisions = [e.event for e in read_entries(daemon.paths.journal) if isinstance(e.event, DecisionRecorded)]
        assert len(decisions) == 1
        assert daemon.desk.state.proposals[pid].status is ProposalStatus.FILLED


async def test_four_eyes_needs_two_different_operators_over_the_api(guard_home: Path) -> None:
    """Above the four-eyes notional one operator cannot approve twice; a second operator executes it."""
    async with running(daemon_config(operators={"four_eyes_notional": 1000})) as daemon:
        store = CredentialStore(daemon.paths.root)
        store.add("alice", Scope.OPERATOR)
        store.add("bob", Scope.OPERATOR)
        as_alice = ApiClient.from_config(daemon.config, operator="alice")
        as_bob = ApiClient.from_config(daemon.config, operator="bob")
        async with as_alice.connect("alice") as alice, as_bob.connect("bob") as bob:
            pid = await queue_proposal(daemon)
            first = await alice.send(Approve(alice.next_id(), pid, 1))
            assert first.ok and "1 of 2" in first.reason
            again = await alice.send(Approve(alice.next_id(), pid, 1))
            assert not again.ok and "different operator" in again.reason
            second = await bob.send(Approve(bob.next_id(), pid, 1))
            assert second.ok and second.data["status"] == "FILLED"


async def test_every_decision_carries_its_operator(daemon: Daemon, client: ApiClient) -> None:
    """The journal records which connection's operator decided, with the reason given."""
    async with client.connect("carol") as carol:
        pid = await queue_proposal(daemon)
        reply = await carol.send(Reject(carol.next_id(), pid, "not convinced"))
        assert reply.ok
    decision = next(e.event for e in read_entries(daemon.paths.journal) if isinstance(e.event, DecisionRecorded))
    assert (decision.operator, decision.reason) == ("carol", "not convinced")


async def test_commands_before_hello_are_refused(daemon: Daemon) -> None:
    """A connection that has not said who it is cannot command anything."""
    endpoint = ApiClient.from_config(daemon.config).endpoint()
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=endpoint.socket), headers={"Authorization": f"Bearer {endpoint.token}"}
        ) as http,
        http.ws_connect("http://guard/v1/ws") as ws,
    ):
        await ws.receive()  # snapshot
        await ws.send_str('{"v": 2, "type": "Kill", "id": "k1"}')
        reply = await ws.receive_json()
        assert (reply["type"], reply["ok"]) == ("Reply", False) and "say hello first" in reply["reason"]
    assert daemon.desk.state.trading_state is TradingState.ACTIVE


@pytest.mark.parametrize("token", [None, "wrong-token-wrong-token-wrong-token-x"])
async def test_missing_or_wrong_token_is_refused(daemon: Daemon, token: str | None) -> None:
    """Without the right bearer token nothing but /health answers; the daemon is unaffected."""
    socket = str(StatePaths(daemon.config.state_dir).socket)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=socket), headers=headers) as http:
        async with http.get("http://guard/health") as health:
            assert health.status == 200
        for method, path in (("GET", "/v1/snapshot"), ("POST", "/v1/commands"), ("GET", "/metrics")):
            async with http.request(method, f"http://guard{path}", data='{"v":1,"type":"Kill","id":"k"}') as r:
                assert r.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect("http://guard/v1/ws")
        assert refused.value.status == 401
    assert daemon.desk.state.trading_state is TradingState.ACTIVE
    assert daemon.desk.state.kill_count == 0


async def test_rest_command_needs_an_operator_and_is_journaled(daemon: Daemon, client: ApiClient) -> None:
    """REST carries the same commands; each needs an operator and is answered after it is journaled."""
    reply = await client.command(SetRiskLimit("r1", "max_order_notional", "5000", "tighter"), "alice")
    assert reply.ok and "25000 -> 5000" in reply.reason.replace('"', "")
    assert daemon.desk.limits().max_order_notional == 5000
    anonymous = await client.command(Kill("k1"), "")
    assert not anonymous.ok and "X-Guard-Operator" in anonymous.reason
    assert daemon.desk.state.trading_state is TradingState.ACTIVE


async def test_kill_over_rest_replies_halted_then_rearm(daemon: Daemon, client: ApiClient) -> None:
    """Kill answers once HALTED is journaled; re-arm needs the typed phrase."""
    reply = await client.command(Kill("k1", "drill"), "alice")
    assert reply.ok and reply.reason == "HALTED"
    assert daemon.desk.state.trading_state is TradingState.HALTED
    wrong = await client.command(Rearm("r1", "ok"), "alice")
    assert not wrong.ok and "RE-ARM" in wrong.reason
    assert (await client.command(Rearm("r2", "RE-ARM"), "alice")).ok
    assert daemon.desk.state.trading_state is TradingState.ACTIVE


async def test_status_reaches_every_client_when_one_kills(daemon: Daemon, client: ApiClient) -> None:
    """A kill from one operator turns every attached screen HALTED, with an alert, at once."""
    async with client.connect("alice") as alice, client.connect("bob") as bob:
        await bob.send(Kill(bob.next_id(), "from bob"))
        seen: list = []

        def halted_and_logged(m: object) -> bool:
            if isinstance(m, StatusChanged) and m.status.trading_state is TradingState.HALTED:
                seen.append(m.status.state_reason)
            if isinstance(m, EventsLogged):
                seen.extend(e.text for e in m.events if "KILL by bob" in e.text)
            return len(seen) >= 2

        await wait_for(alice, halted_and_logged)
        assert any("from bob" in text for text in seen)


async def test_a_commit_is_logged_to_clients_in_one_frame_and_no_event_is_missed(
    daemon: Daemon, client: ApiClient
) -> None:
    """A kill that ends four proposals journals them in one commit: one log frame carries all of them."""
    for symbol in ("BTC/USDT:USDT", "ETH/USDT:USDT"):
        for side in (Side.BUY, Side.SELL):
            await queue_proposal(daemon, symbol=symbol, side=side)
    async with client.connect("alice") as alice:
        frames: list[EventsLogged] = []

        def kill_logged(m: object) -> bool:
            if isinstance(m, EventsLogged):
                frames.append(m)
            return any(e.type == "KillCompleted" for f in frames for e in f.events)

        assert (await alice.send(Kill(alice.next_id(), "drill"))).ok
        await wait_for(alice, kill_logged)
    killing = next(f for f in frames if any(e.type == "KillRequested" for e in f.events))
    assert sum(e.type == "ProposalKilled" for e in killing.events) == 4
    seqs = [e.seq for f in frames for e in f.events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


async def test_metrics_and_health(daemon: Daemon, client: ApiClient) -> None:
    """/metrics speaks Prometheus text; /health says the daemon is up."""
    text = await client.metrics()
    assert 'guard_trading_state{state="ACTIVE"} 1' in text
    assert "guard_loop_lag_seconds" in text
    health = await client.health()
    assert health is not None and health["status"] == "ok"


def test_token_file_is_owner_only(daemon: Daemon) -> None:
    """The token file is created with mode 0600, and the socket is owner-only too."""
    paths = StatePaths(daemon.config.state_dir)
    assert stat.S_IMODE(paths.token.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.socket.stat().st_mode) == 0o600


def test_non_loopback_bind_is_refused(daemon: Daemon, tmp_path: Path) -> None:
    """The API server refuses any address that is not loopback, whatever it is given."""
    assert daemon.hub is not None
    with pytest.raises(DaemonError, match="only loopback"):
        ApiServer(
            ApiSection(transport="tcp", host="0.0.0.0"),
            StatePaths(tmp_path),
            "t" * 40,
            daemon.hub,
            Presence(),
            health=dict,
            metrics=str,
            model_card=str,
            performance=dict,
        )


async def test_tcp_transport_on_loopback_works(guard_home: Path) -> None:
    """With transport = tcp the API listens on 127.0.0.1 and clients find the port."""
    async with running(daemon_config(api={"transport": "tcp", "port": 0})) as daemon:
        snapshot = await ApiClient.from_config(daemon.config).snapshot()
        assert snapshot.status.exchange == "sim"


async def test_client_that_stops_reading_is_dropped_and_kill_stays_fast(daemon: Daemon, client: ApiClient) -> None:
    """A client that stops reading its socket is dropped; meanwhile another operator's kill answers at once."""
    assert daemon.hub is not None
    endpoint = client.endpoint()
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=endpoint.socket), headers={"Authorization": f"Bearer {endpoint.token}"}
        ) as http,
        http.ws_connect("http://guard/v1/ws") as stuck,
        client.connect("alice") as alice,
    ):
        assert daemon.hub.clients == 2
        for chunk in range(20):  # 2 MB of log lines: more than the stuck socket's buffers hold
            for i in range(50):
                daemon.hub.publish(EventsLogged((LoggedEvent(chunk * 100 + i, 0, "Flood", "x" * 2000),)))
            await asyncio.sleep(0.05)
        started = asyncio.get_running_loop().time()
        reply = await alice.send(Kill(alice.next_id(), "while a client is stuck"))
        assert reply.ok and asyncio.get_running_loop().time() - started < 1.0
        await wait_until(lambda: daemon.hub.clients == 1, within=10)
        assert not stuck.closed or stuck.close_code is not None


async def _post(daemon: Daemon, body: bytes, operator: str = "alice") -> tuple[int, dict]:
    endpoint = ApiClient.from_config(daemon.config).endpoint()
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=endpoint.socket), headers={"Authorization": f"Bearer {endpoint.token}"}
        ) as http,
        http.post("http://guard/v1/commands", data=body, headers={OPERATOR_HEADER: operator}) as response,
    ):
        text = await response.text()
        return response.status, json.loads(text) if text.startswith("{") else {"text": text}


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b'{"v":2,"type":"Kill","id":"k","reason":"\xff\xfe"}', "Kill: not UTF-8 text"),
        (b'\xff{"v":2}', "not JSON"),
        (b'{"v":2,"type":"Kill","id":"k","reason":' + b"[" * 30_000 + b"]" * 30_000 + b"}", "nested too deeply"),
        (b'{"v":2,"type":"ClosePosition","id":"c","symbol":"BTC/USDT:USDT","qty":1e999999}', "ClosePosition.qty"),
        (b'{"v":2,"type":"ClosePosition","id":"c","symbol":"BTC/USDT:USDT","qty":"sNaN"}', "finite"),
        (b'{"v":2,"type":"Approve","id":"a","proposal_id":"P1","version":' + b"9" * 4000 + b"}", "Approve.version"),
        (
            b'{"v":2,"type":"Propose","id":"p","symbol":"BTC/USDT:USDT","side":"buy","qty":"1e-999999","leverage":2}',
            "Propose.qty",
        ),
        (b'{"v":2,"type":"Kill","id":"k","reason":"' + b"r" * 1001 + b'"}', "Kill.reason: longer than the 1000"),
    ],
)
async def test_rest_bad_input_answers_400_naming_it_and_changes_nothing(
    daemon: Daemon, body: bytes, names: str
) -> None:
    """Invalid UTF-8, nesting, absurd or non-finite numbers, an over-long reason: HTTP 400 with a reply that says
    what was wrong (never a 500), and the daemon's state is untouched."""
    assert daemon.desk is not None
    before = daemon.desk.state.snapshot()
    status, reply = await _post(daemon, body)
    assert status == 400 and reply["ok"] is False and names in reply["reason"], (status, reply)
    assert daemon.desk.state.snapshot() == before


@pytest.mark.parametrize("command", ["Kill", "PauseModel", "Rearm", "ReenableThrottle", "ResumeModel", "Reject"])
async def test_rest_operator_name_is_1_to_64_printable_characters_for_every_command(
    daemon: Daemon, command: str
) -> None:
    """The 64-character operator limit holds over REST for every command, Kill and PauseModel included:
    refused with 400 before anything is journaled."""
    assert daemon.desk is not None
    fields = {"Rearm": {"acknowledgment": "RE-ARM"}, "Reject": {"proposal_id": "P000001"}}.get(command, {})
    body = json.dumps({"v": 2, "type": command, "id": "x", **fields}).encode()
    before = daemon.desk.journal.last_seq
    for operator in ("a" * 65, "   ", "bad\tname"):
        status, reply = await _post(daemon, body, operator)
        assert status == 400 and "1 to 64 printable characters" in reply["reason"], (operator, status, reply)
    assert daemon.desk.journal.last_seq == before
    assert daemon.desk.state.trading_state is TradingState.ACTIVE and not daemon.desk.state.model_paused


async def test_rest_prices_far_from_the_market_are_refused_where_proposals_are_checked(
    daemon: Daemon, client: ApiClient
) -> None:
    """A limit, stop or take-profit more than 10x from the market price is refused with the range allowed
    (a limit buy at 1e-9 no longer rests; a stop of 1e12 no longer reaches a re-price)."""
    await queue_proposal(daemon)  # marks are in
    for field, value in (("limit_price", "1E-9"), ("stop", "999999999999"), ("take_profit", "2000000")):
        reply = await client.command(
            Propose(f"p-{field}", "BTC/USDT:USDT", Side.BUY, Decimal("0.001"), Decimal(2), **{field: Decimal(value)}),
            "alice",
        )
        assert not reply.ok and f"{field} {value} is more than 10x away from the market price" in reply.reason


async def test_an_approval_whose_connection_is_cut_at_once_still_reaches_its_broker(daemon: Daemon) -> None:
    """The connection is aborted a moment after the Approve is written: the approval runs in the server, not in
    the connection, so it executes (FILLED) instead of being stranded after its decision was journaled."""
    assert daemon.desk is not None
    pid = await queue_proposal(daemon)
    endpoint = ApiClient.from_config(daemon.config).endpoint()
    async with aiohttp.ClientSession(
        connector=aiohttp.UnixConnector(path=endpoint.socket), headers={"Authorization": f"Bearer {endpoint.token}"}
    ) as http:
        ws = await http.ws_connect("http://guard/v1/ws")
        await ws.receive()  # snapshot
        await ws.send_str(json.dumps({"v": 2, "type": "Hello", "id": "h", "operator": "alice"}))
        await ws.send_str(json.dumps({"v": 2, "type": "Approve", "id": "a", "proposal_id": pid, "version": 1}))
        await ws.send_frame(b'{"v":2,"type":"Kill","id":"k","reason":"\xff"}', aiohttp.WSMsgType.TEXT)
        await ws.send_str("[" * 30_000 + "]" * 30_000)
        ws._response.connection.transport.abort()  # cut, not closed: no close handshake
    await wait_until(lambda: daemon.desk.state.proposals[pid].status.is_final)
    assert daemon.desk.state.proposals[pid].status is ProposalStatus.FILLED
    assert daemon.desk.state.trading_state is TradingState.ACTIVE  # the hostile Kill frame was refused


async def test_a_refused_frame_keeps_the_connection_and_its_operator(daemon: Daemon) -> None:
    """A bad Hello (too long a name), invalid UTF-8 and 30,000 brackets are each refused on the connection; it
    stays open and its operator stays who they were: the next approval executes."""
    assert daemon.desk is not None
    pid = await queue_proposal(daemon)
    endpoint = ApiClient.from_config(daemon.config).endpoint()
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=endpoint.socket), headers={"Authorization": f"Bearer {endpoint.token}"}
        ) as http,
        http.ws_connect("http://guard/v1/ws") as ws,
    ):
        await ws.receive()  # snapshot
        frames = [
            json.dumps({"v": 2, "type": "Hello", "id": "h1", "operator": "alice"}).encode(),
            json.dumps({"v": 2, "type": "Hello", "id": "h2", "operator": "m" * 65}).encode(),
            b'{"v":2,"type":"Kill","id":"k","reason":"\xff"}',
            b"[" * 30_000 + b"]" * 30_000,
            json.dumps({"v": 2, "type": "Approve", "id": "a", "proposal_id": pid, "version": 1}).encode(),
        ]
        for frame in frames:
            await ws.send_frame(frame, aiohttp.WSMsgType.TEXT)
        replies = []
        while len(replies) < len(frames):
            message = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
            if message["type"] == "Reply":
                replies.append(message)
        assert [r["ok"] for r in replies] == [True, False, False, False, True], replies
        assert "Hello.operator: longer than the 64 characters allowed" in replies[1]["reason"]
        assert not ws.closed
    assert daemon.desk.state.proposals[pid].status is ProposalStatus.FILLED
    decision = next(e.event for e in read_entries(daemon.paths.journal) if isinstance(e.event, DecisionRecorded))
    assert decision.operator == "alice"


async def test_stopping_the_daemon_lets_an_approval_in_flight_reach_its_broker(guard_home: Path) -> None:
    """The daemon is told to stop at the worst moment, the instant an approval's decision is durable and before
    its order is sent: the server drains the command first, so the order is filled before the session ends."""
    async with running(daemon_config()) as daemon:
        assert daemon.desk is not None
        pid = await queue_proposal(daemon)
        loop = asyncio.get_running_loop()

        def stop_at_the_decision(entries: list) -> None:  # runs on the journal's writer thread
            if any(isinstance(e.event, DecisionRecorded) for e in entries):
                loop.call_soon_threadsafe(daemon.stop)

        daemon.desk.journal.subscribe(stop_at_the_decision)
        async with ApiClient.from_config(daemon.config).connect("alice") as session:
            await session.ws.send_str(encode(Approve("a", pid, 1)))
            await wait_until(lambda: daemon.desk.state.proposals[pid].status is not ProposalStatus.PENDING)
    kinds = [type(e.event).__name__ for e in read_entries(daemon.paths.journal)]
    assert kinds.index("DecisionRecorded") < kinds.index("OrderFilled") < kinds.index("SessionEnded")
    state = GuardState(daemon.desk.specs)
    for entry in read_entries(daemon.paths.journal):
        state.apply(entry.event)
    assert state.proposals[pid].status is ProposalStatus.FILLED
