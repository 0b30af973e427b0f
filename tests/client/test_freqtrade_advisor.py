"""GuardAdvisor without freqtrade installed (the real freqtrade runs in tests/freqtrade): only a fill says yes,
no answer within the budget says no and warns when guard would keep the proposal open longer, and a
protective exit never waits on a person."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from guard.api.client import ApiClient
from guard.api.credentials import CredentialStore, Scope
from guard.api.protocol import Approve
from guard.client import Filled, Refused
from guard.client.freqtrade import GuardAdvisor, candle_seconds
from guard.daemon import Daemon
from tests.api.support import threaded_daemon, wait_until
from tests.builders import daemon_config

BTC = "BTC/USDT:USDT"


async def approve_when_queued(daemon: Daemon) -> None:
    """A person who approves the first proposal they see."""
    await wait_until(lambda: bool(daemon.desk.state.pending()), within=20)
    pid = daemon.desk.state.pending()[0].proposal.id
    reply = await ApiClient.from_config(daemon.config).command(Approve("a1", pid, 1, "go"), "alice")
    assert reply.ok, reply.reason


def test_advisor_yes_only_on_a_fill_no_on_silence_and_stops_never_wait(
    guard_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Approved and filled: True. Unanswered within the budget: False, with a warning that guard's ttl is longer.
    A stop-loss exit: True at once, nothing proposed. Nobody attached: False, the desk's reason kept."""
    with threaded_daemon(daemon_config(approval={"ttl_seconds": 60})) as td:
        daemon = td.daemon
        CredentialStore(daemon.paths.root).add("freqtrade", Scope.SOURCE)
        td.call(wait_until(lambda: BTC in daemon.desk.marks))
        advisor = GuardAdvisor("freqtrade", budget_seconds=20)
        caplog.set_level(logging.WARNING, logger="guard.client.freqtrade")
        try:
            assert not advisor.confirm_entry(BTC, 0.01, "long")  # nobody attached yet
            assert isinstance(advisor.last_decision, Refused) and "no operator" in advisor.last_decision.reason

            daemon.hub.presence.heard_from("alice")
            person = asyncio.run_coroutine_threadsafe(approve_when_queued(daemon), td.loop)
            assert advisor.confirm_entry(BTC, 0.01, "long", entry_tag="breakout")
            person.result(20)
            assert isinstance(advisor.last_decision, Filled)

            assert "open 60 s but this advisor waits 20 s" in caplog.text  # said once, at the first proposal

            advisor.budget_seconds = 0.3
            assert not advisor.confirm_entry(BTC, 0.01, "long")
            assert "no decision on buy BTC/USDT:USDT within 0.3 s, so no" in caplog.text
            assert advisor.last_decision is None

            before = len(daemon.desk.state.proposals)
            assert advisor.confirm_exit(BTC, 0.01, False, "stop_loss")
            assert len(daemon.desk.state.proposals) == before
        finally:
            advisor.close()


def test_advisor_budget_is_a_share_of_the_candle() -> None:
    """Half a 5m candle is 150 s; a timeframe freqtrade does not know is refused; no budget at all is refused."""
    assert GuardAdvisor("x", timeframe="5m").budget_seconds == 150 == candle_seconds("5m") / 2
    with pytest.raises(ValueError, match="timeframe"):
        candle_seconds("5x")
    with pytest.raises(ValueError, match="no answer within it means no"):
        GuardAdvisor("x")


def test_advisor_fails_closed_on_entries_and_open_on_exits_when_guard_cannot_be_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No daemon, or an absurd amount: an entry is no (never an exception: freqtrade would take that as yes), and
    a signal exit goes ahead (an unreachable guard must not hold a position open)."""
    advisor = GuardAdvisor(token="t" * 40, home=tmp_path, budget_seconds=5)
    caplog.set_level(logging.ERROR, logger="guard.client.freqtrade")
    try:
        assert not advisor.confirm_entry(BTC, 0.01, "long")
        assert "start it with `guard up`" in caplog.text
        assert not advisor.confirm_entry(BTC, "a lot", "long")  # type: ignore[arg-type]
        assert advisor.confirm_exit(BTC, 0.01, False, "exit_signal")
    finally:
        advisor.close()
