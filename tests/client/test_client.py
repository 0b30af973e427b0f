"""guard.client against a real daemon: a source proposes, a person decides over the control API, and the
program learns the outcome as a typed value; every failure says what to fix."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from guard.api.client import ApiClient, Session
from guard.api.credentials import CredentialStore, Scope
from guard.api.protocol import Approve, Kill, Override, ProposalsChanged, Propose, Reject
from guard.client import (
    AsyncGuardClient,
    CredentialRefused,
    DaemonNotRunning,
    DecisionTimeout,
    Expired,
    Filled,
    GuardClient,
    GuardClientError,
    Killed,
    NotConfigured,
    OutOfScope,
    ProposalRefused,
    Refused,
    Rejected,
    UnknownProposal,
)
from guard.daemon import Daemon, running
from guard.domain import OverrideEdits, ProposalStatus, Side
from tests.api.support import threaded_daemon, wait_for, wait_until
from tests.builders import daemon_config

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture
async def daemon(guard_home: Path) -> AsyncIterator[Daemon]:
    async with running(daemon_config(approval={"ttl_seconds": 20})) as d:
        CredentialStore(d.paths.root).add("bot", Scope.SOURCE)
        await wait_until(lambda: SYMBOL in d.desk.marks)
        yield d


async def _queued(operator: Session) -> str:
    """The id of the next proposal the operator's console shows."""
    changed = await wait_for(operator, lambda m: isinstance(m, ProposalsChanged) and bool(m.upserted))
    assert isinstance(changed, ProposalsChanged)
    return changed.upserted[0].proposal.id


async def test_client_approved_proposal_is_filled_with_its_price_and_quantity(daemon: Daemon) -> None:
    """A source proposes; the person at the console approves; the program gets Filled with the fill."""
    bot = AsyncGuardClient("bot")
    async with ApiClient.from_config(daemon.config).connect("alice") as alice:
        pid = await bot.propose(SYMBOL, "buy", qty="0.01", leverage=2, why="breakout above the range")
        assert await _queued(alice) == pid
        fate = await bot.proposal(pid)
        assert (fate.status, fate.proposal.source) == (ProposalStatus.PENDING, "bot")
        assert "breakout above the range" in fate.proposal.why
        assert (await alice.send(Approve(alice.next_id(), pid, 1, "looks fine"))).ok
        decision = await bot.wait_decision(pid, timeout=20)
    assert isinstance(decision, Filled) and decision.filled
    assert (decision.qty, decision.decided_by, decision.reason) == (Decimal("0.01"), "alice", "looks fine")
    assert abs(decision.price - daemon.desk.marks[SYMBOL]) / decision.price < Decimal("0.05")


async def test_client_override_is_filled_at_the_persons_terms(daemon: Daemon) -> None:
    """The person halves the size before approving: Filled says overridden and carries the new quantity."""
    bot = AsyncGuardClient("bot")
    async with ApiClient.from_config(daemon.config).connect("alice") as alice:
        pid = await bot.propose(SYMBOL, "sell", qty="0.02")
        await _queued(alice)
        edits = OverrideEdits(qty=Decimal("0.01"))
        assert (await alice.send(Override(alice.next_id(), pid, 1, edits, "half"))).ok
        decision = await bot.wait_decision(pid, timeout=20)
    assert isinstance(decision, Filled) and decision.overridden and decision.qty == Decimal("0.01")


async def test_client_rejected_proposal_carries_who_and_why(daemon: Daemon) -> None:
    """A rejection reaches the program as Rejected, with the person's reason."""
    bot = AsyncGuardClient("bot")
    async with ApiClient.from_config(daemon.config).connect("alice") as alice:
        pid = await bot.propose(SYMBOL, "buy", qty="0.01")
        await _queued(alice)
        assert (await alice.send(Reject(alice.next_id(), pid, "funding is against it"))).ok
        decision = await bot.wait_decision(pid, timeout=20)
    assert decision == Rejected(pid, "funding is against it", "alice") and not decision.filled


async def test_client_unanswered_proposal_expires_and_a_short_wait_times_out(guard_home: Path) -> None:
    """Nobody answers: a wait shorter than the ttl raises DecisionTimeout; then guard expires it (no means no)."""
    async with running(daemon_config(approval={"ttl_seconds": 1.5})) as daemon:
        CredentialStore(daemon.paths.root).add("bot", Scope.SOURCE)
        await wait_until(lambda: SYMBOL in daemon.desk.marks)
        bot = AsyncGuardClient("bot")
        async with ApiClient.from_config(daemon.config).connect("alice"):
            pid = await bot.propose(SYMBOL, "buy", qty="0.01")
            with pytest.raises(DecisionTimeout, match="stays pending until it expires"):
                await bot.wait_decision(pid, timeout=0.1)
            decision = await bot.wait_decision(pid, timeout=20)
    assert isinstance(decision, Expired) and "no answer means no" in decision.reason


async def test_client_kill_ends_a_waiting_proposal_as_killed(daemon: Daemon) -> None:
    """The kill switch while a proposal waits: the program gets Killed."""
    bot = AsyncGuardClient("bot")
    async with ApiClient.from_config(daemon.config).connect("alice") as alice:
        pid = await bot.propose(SYMBOL, "buy", qty="0.01")
        await _queued(alice)
        assert (await alice.send(Kill(alice.next_id(), "drill"))).ok
        decision = await bot.wait_decision(pid, timeout=20)
    assert isinstance(decision, Killed)


async def test_client_refusal_by_the_desk_is_an_exception_or_a_refused_value(daemon: Daemon) -> None:
    """With nobody attached the desk will not queue: propose raises saying so; ask returns Refused."""
    bot = AsyncGuardClient("bot")
    with pytest.raises(ProposalRefused, match="no operator is attached"):
        await bot.propose(SYMBOL, "buy", qty="0.01")
    refused = await bot.ask(SYMBOL, "buy", qty="0.01", timeout=5)
    assert isinstance(refused, Refused) and "no operator is attached" in refused.reason
    with pytest.raises(ValueError, match="exactly one size"):
        await bot.propose(SYMBOL, "buy")


async def test_client_a_source_sees_only_its_own_proposals(daemon: Daemon) -> None:
    """Another source's proposal and an operator's are invisible to a source; an operator sees them all."""
    CredentialStore(daemon.paths.root).add("other", Scope.SOURCE)
    bot, other = AsyncGuardClient("bot"), AsyncGuardClient("other")
    operator = ApiClient.from_config(daemon.config)
    async with operator.connect("alice"):
        mine = await bot.propose(SYMBOL, "buy", qty="0.01")
        theirs = await other.propose(SYMBOL, "sell", qty="0.01")
        by_hand = await operator.command(Propose("p1", SYMBOL, Side.BUY, Decimal("0.01"), Decimal(1)), "alice")
        assert by_hand.ok
        with pytest.raises(UnknownProposal, match="of this source's"):
            await bot.proposal(theirs)
        with pytest.raises(UnknownProposal):
            await bot.proposal(by_hand.data["proposal_id"])
        assert [f.proposal.id for f in await bot.my_proposals()] == [mine]
        status = await bot.status()
    assert status.operator_present and SYMBOL in status.marks and status.trading_state.value == "ACTIVE"
    operator_reads = AsyncGuardClient(token=daemon.paths.token.read_text().strip())  # the shared token: a person
    seen = {f.proposal.id for f in await operator_reads.my_proposals()}
    assert {mine, theirs, by_hand.data["proposal_id"]} <= seen


async def test_client_errors_say_what_to_fix(daemon: Daemon, tmp_path: Path) -> None:
    """No source named, no token file, a revoked token, no daemon: each error names the fix."""
    with pytest.raises(NotConfigured, match="GUARD_SOURCE=NAME"):
        AsyncGuardClient().connection()
    with pytest.raises(NotConfigured, match="guard source add ghost"):
        AsyncGuardClient("ghost").connection()
    token = (daemon.paths.root / "sources" / "bot.token").read_text().strip()
    CredentialStore(daemon.paths.root).revoke("bot")
    with pytest.raises(CredentialRefused, match="revoked"):
        await AsyncGuardClient(token=token).status()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DaemonNotRunning, match="guard up"):
        AsyncGuardClient(token=token, home=tmp_path / "empty").connection()
    with pytest.raises(DaemonNotRunning, match="guard up"):
        await AsyncGuardClient(token=token, url="http://127.0.0.1:9").status()


def test_sync_client_proposes_and_waits_from_a_plain_thread(guard_home: Path) -> None:
    """The blocking client, from code with no event loop (a strategy, a script), against a daemon elsewhere."""
    with threaded_daemon(daemon_config()) as td:
        daemon = td.daemon
        CredentialStore(daemon.paths.root).add("bot", Scope.SOURCE)
        operator = ApiClient.from_config(daemon.config)
        td.call(wait_until(lambda: SYMBOL in daemon.desk.marks))
        daemon.hub.presence.heard_from("alice")
        with GuardClient("bot") as bot:
            pid = bot.propose(SYMBOL, "buy", qty=Decimal("0.01"))
            assert td.call(operator.command(Approve("a1", pid, 1, "ok"), "alice")).ok
            decision = bot.wait_decision(pid, timeout=20)
            assert isinstance(decision, Filled) and decision.qty == Decimal("0.01")
            assert [f.proposal.id for f in bot.my_proposals()] == [pid]
            assert asyncio.run(AsyncGuardClient("bot").proposal(pid)).status is ProposalStatus.FILLED


async def test_client_reads_are_bounded_and_a_source_reads_nothing_else(daemon: Daemon) -> None:
    """A list limit outside 1..200 is refused with the range; the operator's snapshot is out of a source's scope."""
    bot = AsyncGuardClient("bot")
    with pytest.raises(GuardClientError, match=r"HTTP 400.*1 to 200"):
        await bot.my_proposals(limit=0)
    with pytest.raises(OutOfScope, match="holds a source credential: it may"):
        await bot._get("/v1/snapshot")
    for hostile in ("../snapshot", "P000001?limit=1", "P" * 2000, "\u202eP1", "%2e%2e"):
        with pytest.raises(UnknownProposal):
            await bot.proposal(hostile)


def test_client_a_lost_answer_is_asked_again_and_the_proposal_is_queued_once(guard_home: Path) -> None:
    """The daemon stalls past the client's timeout while the Propose waits in its socket: the client sends the same
    command id again and gets the first answer back; one proposal is queued, not two."""
    with threaded_daemon(daemon_config()) as td:
        daemon = td.daemon
        CredentialStore(daemon.paths.root).add("bot", Scope.SOURCE)
        td.call(wait_until(lambda: SYMBOL in daemon.desk.marks))
        daemon.hub.presence.heard_from("alice")
        with GuardClient("bot", timeout=0.5) as bot:
            td.loop.call_soon_threadsafe(time.sleep, 1.0)  # a stalled daemon: nothing on its loop runs for 1 s
            pid = bot.propose(SYMBOL, "buy", qty="0.01")
        assert [r.proposal.id for r in daemon.desk.state.proposals.values()] == [pid]


def test_client_named_source_beats_a_token_left_in_the_environment(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's GUARD_TOKEN left in the shell does not turn a program that names its source into the
    operator; a source name that is not one (a path) is refused before any file is read."""
    monkeypatch.setenv("GUARD_TOKEN", daemon.paths.token.read_text().strip())
    bot_token = (daemon.paths.root / "sources" / "bot.token").read_text().strip()
    assert AsyncGuardClient("bot").connection().token == bot_token
    with pytest.raises(NotConfigured, match="not a source's name"):
        AsyncGuardClient("../token").connection()
