"""Hostile frames interleaved with real approvals, against a real daemon: each command fails alone.

Over 10,000 frames a person or a program could send by mistake or on purpose (absurd numbers, non-finite
decimals, 4,000-digit integers, 60,000 brackets, invalid UTF-8, oversized strings, binary frames, garbage)
land between real approvals, on the same WebSocket (a millisecond after the Approve) and on another one, and
over REST. What must hold, from the replies and the journal:

- every hostile frame gets a refusal with a reason, and its connection stays open;
- every approval either executes once (one decision, one entry order, FILLED) or is refused with a reason;
- no proposal is stranded (APPROVED, OVERRIDDEN or SUBMITTED with its order never answered);
- no HTTP request answers 500.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from guard.api.protocol import OPERATOR_HEADER, PROTOCOL_VERSION
from guard.approval.state import GuardState
from guard.domain import OrderPurpose, ProposalStatus, Side
from guard.events import DecisionRecorded, OrderSubmitted
from guard.journal.store import read_entries
from tests.api.support import ThreadedDaemon, threaded_daemon
from tests.builders import BTC, ETH, daemon_config, request, specs_for

FRAMES_WANTED = 10_000
EXAMPLES = 100
PER_CONNECTION = (50, 60)
"""Hostile frames per connection per example: two connections, so ~100 frames an example."""

V = PROTOCOL_VERSION
ABSURD_NUMBERS = (
    "1e999999", "-1e999999", "1e-999999", "9" * 4000, "-" + "9" * 4000, "0", "-1", "0.0", "1e13", "1e-13",
    "123456789012345678901234567", "-0", "1E+99",
)  # fmt: skip
NON_FINITE = ("sNaN", "NaN", "-NaN", "Infinity", "-Infinity", "inf", "nan", "sNaN123", " Infinity ")
DEEP = (200, 2_000, 30_000, 60_000)
TOO_LONG = {"operator": 65, "reason": 1001, "id": 129, "symbol": 65, "proposal_id": 65, "text": 201, "key": 65}


def _frame(fields: dict[str, object], raw: dict[str, str] | None = None) -> bytes:
    """A JSON object with `raw` values spliced in verbatim (numbers JSON cannot hold as Python floats)."""
    text = json.dumps(fields)
    for key, value in (raw or {}).items():
        text = text[:-1] + f', "{key}": {value}}}'
    return text.encode()


def _propose(field: str, value: str) -> bytes:
    base = {"v": V, "type": "Propose", "id": "h-p", "symbol": BTC, "side": "buy", "qty": "0.001", "leverage": "2"}
    base.pop(field, None)
    return _frame(base, {field: value})


absurd_value = st.one_of(
    st.sampled_from(ABSURD_NUMBERS),  # as JSON numbers
    st.sampled_from(ABSURD_NUMBERS + NON_FINITE).map(json.dumps),  # as strings
)
absurd_propose = st.builds(
    _propose, st.sampled_from(["qty", "leverage", "stop", "take_profit", "limit_price"]), absurd_value
)
absurd_override = st.builds(
    lambda field, value: _frame(
        {"v": V, "type": "Override", "id": "h-o", "proposal_id": "P000001", "version": 1},
        {"edits": f'{{"{field}": {value}}}'},
    ),
    st.sampled_from(["qty", "leverage", "stop", "take_profit", "limit_price"]),
    absurd_value,
)
absurd_close = st.builds(
    lambda value: _frame({"v": V, "type": "ClosePosition", "id": "h-c", "symbol": BTC}, {"qty": value}), absurd_value
)
absurd_version = st.builds(
    lambda value: _frame({"v": V, "type": "Approve", "id": "h-a", "proposal_id": "P000001"}, {"version": value}),
    st.sampled_from(["9" * 4000, "-1", "0", "1.5", "1e999999", '"1"', "null", "[]", "2147483648"]),
)
absurd_limit = st.builds(
    lambda key, value: _frame({"v": V, "type": "SetRiskLimit", "id": "h-l", "key": key, "value": value}),
    st.sampled_from(["max_order_notional", "daily_loss_limit", "max_orders_per_minute", "max_leverage"]),
    st.sampled_from((*NON_FINITE, "1e999999", "9" * 60, "1e-999999", "-1e99", "1E+13")),
)
deep = st.builds(
    lambda n, where: (
        _frame({"v": V, "type": "Kill", "id": "h-d"}, {"reason": "[" * n + "]" * n}) if where else b"[" * n + b"]" * n
    ),
    st.sampled_from(DEEP),
    st.booleans(),
)
bad_utf8 = st.builds(
    lambda junk, inside: (
        b'{"v": 2, "type": "Kill", "id": "h-u", "reason": "' + junk + b'"}' if inside else junk + b'{"v": 2}'
    ),
    st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]),
    st.booleans(),
)
too_long = st.sampled_from(
    [
        _frame({"v": V, "type": "Hello", "id": "h-n", "operator": "x" * TOO_LONG["operator"]}),
        _frame({"v": V, "type": "Kill", "id": "h-r", "reason": "r" * TOO_LONG["reason"]}),
        _frame({"v": V, "type": "PauseModel", "id": "i" * TOO_LONG["id"]}),
        _frame({"v": V, "type": "ClosePosition", "id": "h-s", "symbol": "S" * TOO_LONG["symbol"]}),
        _frame({"v": V, "type": "Reject", "id": "h-j", "proposal_id": "P" * TOO_LONG["proposal_id"]}),
        _frame({"v": V, "type": "Acknowledge", "id": "h-k", "kind": "leverage", "text": "t" * TOO_LONG["text"]}),
        _frame({"v": V, "type": "SetRiskLimit", "id": "h-y", "key": "k" * TOO_LONG["key"], "value": "1"}),
        _frame({"v": V, "type": "Kill", "id": "h-big", "reason": "x" * 70_000}),  # beyond the 64 KB frame limit
    ]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
# Half-right commands whose well-formed versions are refusals too (never a Kill, Rearm or Heartbeat: those obey).
half_right = st.builds(
    lambda type_name, fields: json.dumps({"v": V, "type": type_name, **fields}).encode(),
    st.sampled_from(["Approve", "Override", "Reject", "ClosePosition", "SetRiskLimit", "Acknowledge", "Propose"]),
    st.dictionaries(st.sampled_from(["id", "proposal_id", "version", "edits", "qty", "key", "kind"]), json_values),
)
garbage = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda v, t: json.dumps({"v": v, "type": t}).encode(), json_values, json_values),
)
hostile = st.one_of(
    absurd_propose, absurd_override, absurd_close, absurd_version, absurd_limit, deep, bad_utf8, too_long,
    half_right, garbage,
)  # fmt: skip
# A frame, and whether it goes as a binary WebSocket frame (refused: the protocol is text).
hostile_frame = st.tuples(hostile, st.sampled_from([False] * 9 + [True]))


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedDaemon]:
    """A real daemon with limits wide enough that approvals are refused only for what this test is about."""
    home = tmp_path_factory.mktemp("hostile-home")
    config = daemon_config(
        guard={"state_dir": str(home)},
        risk={"max_orders_per_minute": 10_000, "daily_loss_limit": 1_000_000, "max_position_notional": 1_000_000},
        operators={"heartbeat_timeout_seconds": 3600},
        paper={"starting_balance": 1_000_000},
    )
    with threaded_daemon(config) as running:
        yield running


class Campaign:
    """What the hostile session saw, summed over every example."""

    def __init__(self) -> None:
        self.frames = 0
        self.rest_bodies = 0
        self.approvals: dict[str, tuple[str, dict[str, object]]] = {}
        """Approve command id -> (proposal id, the reply)."""
        self.statuses: Counter[int] = Counter()
        self.ids = itertools.count(1)


async def _connect(http: aiohttp.ClientSession, operator: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect("http://guard/v1/ws")
    await ws.receive()  # the snapshot
    await ws.send_str(json.dumps({"v": V, "type": "Hello", "id": "hello", "operator": operator}))
    while True:
        message = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
        if message["type"] == "Reply":
            assert message["ok"], message
            return ws


async def _replies(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, object]]:
    """The next `count` replies on this connection (views pushed in between are skipped)."""
    out: list[dict[str, object]] = []
    while len(out) < count:
        frame = await asyncio.wait_for(ws.receive(), 15)
        assert frame.type is aiohttp.WSMsgType.TEXT, f"connection ended after {len(out)} of {count} replies: {frame}"
        message = json.loads(frame.data)
        if message["type"] == "Reply":
            out.append(message)
    return out


async def _send(ws: aiohttp.ClientWebSocketResponse, frame: bytes, binary: bool) -> None:
    await ws.send_frame(frame, aiohttp.WSMsgType.BINARY if binary else aiohttp.WSMsgType.TEXT)


async def _queue(running: ThreadedDaemon, symbol: str, side: Side) -> tuple[str, int]:
    desk = running.daemon.desk
    assert desk is not None
    result = await running.call_async(desk.propose(request(symbol, side, qty="0.01" if symbol == BTC else "0.2")))
    assert result.ok and result.proposal is not None, result.reason
    return result.proposal.id, result.proposal.version


async def _example(
    running: ThreadedDaemon,
    campaign: Campaign,
    streams: tuple[list[tuple[bytes, bool]], list[tuple[bytes, bool]]],
    approve_at: tuple[int, int],
    rest: list[bytes],
    side: Side,
) -> None:
    endpoint = running.endpoint
    assert endpoint is not None and endpoint.socket is not None
    async with aiohttp.ClientSession(
        connector=aiohttp.UnixConnector(path=endpoint.socket), headers={"Authorization": f"Bearer {endpoint.token}"}
    ) as http:
        a, b = await _connect(http, "alice"), await _connect(http, "bob")
        proposals = [await _queue(running, BTC, side), await _queue(running, ETH, side)]

        async def stream(ws: aiohttp.ClientWebSocketResponse, frames: list[tuple[bytes, bool]], at: int, pid: str,
                         version: int) -> list[dict[str, object]]:  # fmt: skip
            reader = asyncio.create_task(_replies(ws, len(frames) + 1))
            approve_id = f"approve-{next(campaign.ids)}"
            for i, (frame, binary) in enumerate(frames):
                if i == at:
                    await ws.send_str(json.dumps(
                        {"v": V, "type": "Approve", "id": approve_id, "proposal_id": pid, "version": version}
                    ))  # fmt: skip
                await _send(ws, frame, binary)
            if at >= len(frames):
                await ws.send_str(json.dumps(
                    {"v": V, "type": "Approve", "id": approve_id, "proposal_id": pid, "version": version}
                ))  # fmt: skip
            replies = await reader
            [mine] = [r for r in replies if r["id"] == approve_id]
            campaign.approvals[approve_id] = (pid, mine)
            refused = [r for r in replies if r is not mine]
            assert len(refused) == len(frames)
            for reply in refused:
                assert reply["ok"] is False and reply["reason"], reply
            return replies

        async def post(body: bytes) -> None:
            async with http.post("http://guard/v1/commands", data=body, headers={OPERATOR_HEADER: "carol"}) as r:
                campaign.statuses[r.status] += 1
                text = await r.text()
                assert r.status != 500, text
                if r.status == 200:
                    reply = json.loads(text)
                    assert reply["ok"] is False and reply["reason"], reply

        await asyncio.gather(
            stream(a, streams[0], approve_at[0], *proposals[0]),
            stream(b, streams[1], approve_at[1], *proposals[1]),
            *(post(body) for body in rest),
        )
        for ws in (a, b):  # a refused frame never closes its connection
            assert not ws.closed
            await ws.send_str(json.dumps({"v": V, "type": "Heartbeat", "id": "still-there"}))
            [beat] = await _replies(ws, 1)
            assert beat["ok"] is True
            await ws.close()
    campaign.frames += len(streams[0]) + len(streams[1])
    campaign.rest_bodies += len(rest)
    desk = running.daemon.desk
    assert desk is not None
    for pid, _ in proposals:  # a refused approval leaves its proposal pending: clear it for the next example
        if desk.state.proposals[pid].status is ProposalStatus.PENDING:
            await running.call_async(desk.reject(pid, "tester", reason="end of example"))


def test_hostile_frames_between_approvals_strand_nothing_and_each_fails_alone(running: ThreadedDaemon) -> None:
    """>= 10,000 hostile frames around real approvals on two WebSockets and REST: every frame refused with a
    reason and its connection kept, every approval executed once or refused with a reason, nothing stranded
    in the journal, no HTTP 500."""
    campaign = Campaign()
    sides = itertools.cycle([Side.BUY, Side.SELL])  # alternate, so positions stay small
    running.call(_wait_for_marks(running))
    streams = st.lists(hostile_frame, min_size=PER_CONNECTION[0], max_size=PER_CONNECTION[1])

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(
        a=streams,
        b=streams,
        at=st.tuples(st.integers(0, PER_CONNECTION[0]), st.integers(0, PER_CONNECTION[0])),
        rest=st.lists(hostile, min_size=2, max_size=6),
    )
    def example(
        a: list[tuple[bytes, bool]], b: list[tuple[bytes, bool]], at: tuple[int, int], rest: list[bytes]
    ) -> None:
        asyncio.run(_example(running, campaign, (a, b), at, rest, next(sides)))

    example()
    assert campaign.frames >= FRAMES_WANTED, campaign.frames
    assert 500 not in campaign.statuses and campaign.statuses[400] > 0, campaign.statuses
    _check_journal(running, campaign)


async def _wait_for_marks(running: ThreadedDaemon) -> None:
    desk = running.daemon.desk
    assert desk is not None and running.daemon.hub is not None
    async with asyncio.timeout(30):
        while not {BTC, ETH} <= set(desk.marks):  # noqa: ASYNC110 - the marks arrive from the feed, with no event
            await asyncio.sleep(0.05)


def _check_journal(running: ThreadedDaemon, campaign: Campaign) -> None:
    """From the journal alone: each approval executed exactly once or not at all, and nothing is stranded."""
    path = Path(running.daemon.paths.journal)
    entries = [e.event for e in read_entries(path)]
    state = GuardState(specs_for())
    for event in entries:
        state.apply(event)
    stranded = [
        (pid, r.status)
        for pid, r in state.proposals.items()
        if r.status in (ProposalStatus.APPROVED, ProposalStatus.OVERRIDDEN, ProposalStatus.SUBMITTED)
    ]
    assert stranded == []
    assert [o.request.client_order_id for o in state.orders_in_doubt()] == []
    decisions = Counter(e.proposal_id for e in entries if isinstance(e, DecisionRecorded) and e.executes is not None)
    entry_orders = Counter(
        e.request.proposal_id
        for e in entries
        if isinstance(e, OrderSubmitted) and e.request.purpose is OrderPurpose.ENTRY
    )
    executed = 0
    for pid, reply in campaign.approvals.values():
        if reply["ok"]:
            executed += 1
            assert state.proposals[pid].status is ProposalStatus.FILLED, (pid, reply)
            assert (decisions[pid], entry_orders[pid]) == (1, 1), pid
        else:
            assert reply["reason"], reply
            assert decisions[pid] == 0 and entry_orders[pid] == 0, (pid, reply)
    assert executed >= len(campaign.approvals) * 0.8, (executed, len(campaign.approvals))
    assert Decimal(0) <= state.account.total
