"""Fuzzed frames against a real daemon: every one gets an error reply, the connection stays, nothing changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from guard.api.client import Endpoint
from guard.api.protocol import COMMAND_TYPES
from guard.daemon import Daemon
from tests.api.support import threaded_daemon
from tests.builders import daemon_config

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# Frames that look like commands (right version and type, wrong fields) and frames that do not.
command_like = st.builds(
    lambda type_name, fields: json.dumps({"v": 2, "type": type_name, **fields}),
    st.sampled_from(sorted(COMMAND_TYPES)),
    st.dictionaries(
        st.sampled_from(["id", "proposal_id", "version", "edits", "qty", "reason", "text", "kind"]), json_values
    ),
)
frames = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    command_like,
    st.builds(lambda v, t: json.dumps({"v": v, "type": t}), json_values, json_values),
)


@pytest.fixture(scope="module")
def daemon_thread(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, Endpoint]]:
    """A real daemon on its own thread and loop, so hypothesis can drive it example after example."""
    home = tmp_path_factory.mktemp("fuzz-home")
    with threaded_daemon(daemon_config(guard={"state_dir": str(home)})) as running:
        assert running.endpoint is not None
        yield running.daemon, running.endpoint


async def _exchange(endpoint: Endpoint, batch: list[str]) -> list[dict]:
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=endpoint.socket), headers={"Authorization": f"Bearer {endpoint.token}"}
        ) as http,
        http.ws_connect("http://guard/v1/ws") as ws,
    ):
        await ws.receive()  # snapshot
        await ws.send_str('{"v": 2, "type": "Hello", "id": "h", "operator": "fuzzer"}')
        await _next_reply(ws)
        replies = []
        for frame in batch:
            await ws.send_str(frame)
            replies.append(await _next_reply(ws))
        assert not ws.closed
        return replies


async def _next_reply(ws: aiohttp.ClientWebSocketResponse) -> dict:
    while True:
        message = await asyncio.wait_for(ws.receive_json(), 5)
        if message.get("type") == "Reply":
            return dict(message)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(frames, min_size=1, max_size=8))
def test_fuzzed_frames_are_refused_and_change_nothing(daemon_thread: tuple[Daemon, Endpoint], batch: list[str]) -> None:
    """Garbage, wrong types, wrong versions and half-right commands: each gets an error reply; state is unchanged."""
    daemon, endpoint = daemon_thread
    assert daemon.desk is not None
    before = daemon.desk.state.snapshot()
    replies = asyncio.run(_exchange(endpoint, batch))
    assert len(replies) == len(batch)
    # A frame that happens to be a well-formed command (a Heartbeat, or a Kill with a string id) is obeyed;
    # the property is about everything else.
    if any(r["ok"] and r["reason"] and not r["reason"].startswith("hello ") for r in replies):
        return
    after = daemon.desk.state.snapshot()
    for part in ("trading_state", "proposals", "orders", "account", "acknowledgments", "risk_limits", "kill_count"):
        assert after[part] == before[part], part


def test_fuzzing_left_the_daemon_answering(daemon_thread: tuple[Daemon, Endpoint]) -> None:
    """After the fuzzing the daemon still answers a plain request."""
    _, endpoint = daemon_thread
    replies = asyncio.run(_exchange(endpoint, ['{"v": 2, "type": "Heartbeat", "id": "still-there"}']))
    assert replies == [{"v": 2, "type": "Reply", "id": "still-there", "ok": True, "reason": "", "data": {}}]
