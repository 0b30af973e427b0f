"""docs/sources.md's copy-paste examples, run as a reader would run them against a real daemon, with a person
(a scripted operator) deciding. The mcpServers entry starts `guard mcp` in tests/mcp, the freqtrade strategy
runs in tests/freqtrade."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from guard.api.client import ApiClient, Session
from guard.api.credentials import CredentialStore, Scope
from guard.api.protocol import Approve, ProposalsChanged
from guard.daemon import running
from tests.api.support import wait_until
from tests.builders import daemon_config
from tests.doc_examples import example, examples

SYMBOL = "BTC/USDT:USDT"


def test_every_example_in_the_doc_is_run_by_a_test() -> None:
    """A new example in docs/sources.md needs a test that runs it (here, in tests/mcp or in tests/freqtrade)."""
    assert set(examples()) == {"script", "mcp-config", "freqtrade-strategy", "alert-curl"}


async def approve_next(session: Session) -> str:
    """A person approving the next proposal they see; returns its id."""
    async for message in session.messages():
        if isinstance(message, ProposalsChanged) and message.upserted:
            p = message.upserted[0].proposal
            assert (await session.send(Approve(session.next_id(), p.id, p.version, "fine"))).ok
            return p.id
    raise AssertionError(session.closed_reason)


async def test_doc_script_proposes_and_prints_the_fill(guard_home: Path, tmp_path: Path) -> None:
    """The script example, run as a program with GUARD_SOURCE and GUARD_HOME: a person approves, it prints the fill."""
    script = tmp_path / "propose.py"
    script.write_text(example("script"), encoding="utf-8")
    async with running(daemon_config()) as daemon:
        CredentialStore(daemon.paths.root).add("script", Scope.SOURCE)
        await wait_until(lambda: SYMBOL in daemon.desk.marks)
        async with ApiClient.from_config(daemon.config).connect("alice") as alice:
            env = {**os.environ, "GUARD_HOME": str(guard_home), "GUARD_SOURCE": "script"}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(script), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            pid = await asyncio.wait_for(approve_next(alice), 60)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 0, err.decode()
    assert "trading ACTIVE, a person is present: True" in text
    assert f"proposed {pid}; a person decides" in text and "filled 0.010 at " in text
    assert daemon.desk.state.proposals[pid].proposal.source == "script"


async def test_doc_alert_curl_queues_a_proposal_with_its_reason(guard_home: Path) -> None:
    """The alert example's curl, with the alerts source's token: the proposal is queued with the alert's reason."""
    async with running(daemon_config()) as daemon:
        CredentialStore(daemon.paths.root).add("alerts", Scope.SOURCE)
        await wait_until(lambda: SYMBOL in daemon.desk.marks)
        async with ApiClient.from_config(daemon.config).connect("alice"):
            proc = await asyncio.create_subprocess_exec(
                "bash",
                "-c",
                example("alert-curl"),
                env={**os.environ, "GUARD_HOME": str(guard_home)},
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
    reply = json.loads(out)
    assert reply["ok"], reply
    proposal = daemon.desk.state.proposals[reply["data"]["proposal_id"]].proposal
    assert proposal.source == "alerts" and "RSI(14) crossed up through 30 on 5m" in proposal.why
