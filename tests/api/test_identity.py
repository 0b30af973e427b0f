"""Identity is a credential (invariant 13): an operator is who their token says, four-eyes counts credentials,
a source may only propose, a command id is executed at most once, and secrets never reach the record."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
import structlog

from guard.api.client import ApiClient
from guard.api.credentials import CredentialStore, Scope
from guard.api.protocol import (
    Acknowledge,
    AmendOrder,
    Approve,
    CancelOrder,
    ClosePosition,
    Kill,
    Override,
    PauseModel,
    Propose,
    Rearm,
    ReenableThrottle,
    Reject,
    ResumeModel,
    SetRiskLimit,
)
from guard.approval.desk import REARM_PHRASE
from guard.daemon import Daemon, running
from guard.domain import AcknowledgmentKind, OverrideEdits, Side, TradingState
from guard.errors import DaemonError
from guard.events import ApprovalCounted, CommandRefused, DecisionRecorded
from guard.journal.chain import read_entries
from guard.logs import configure
from tests.api.support import queue_proposal, wait_until
from tests.builders import daemon_config

SYMBOL = "BTC/USDT:USDT"


def _client(daemon: Daemon, name: str, scope: Scope = Scope.OPERATOR) -> ApiClient:
    """A client holding `name`'s own credential, issued the way `guard operator|source add` issues it."""
    store = CredentialStore(daemon.paths.root)
    store.add(name, scope)
    if scope is Scope.SOURCE:
        return _TokenClient(daemon, store.token_file(name, scope).read_text().strip())
    return ApiClient.from_config(daemon.config, operator=name)


class _TokenClient(ApiClient):
    """A client showing one given token (a source's program reads its token the same way)."""

    def __init__(self, daemon: Daemon, token: str) -> None:
        super().__init__(daemon.config.api, daemon.paths)
        self._given = token

    def endpoint(self):  # type: ignore[no-untyped-def]
        base = super().endpoint()
        return type(base)(base.base_url, base.socket, self._given)


def journal(daemon: Daemon) -> list:
    return [e.event for e in read_entries(daemon.paths.journal)]


async def test_an_operators_own_token_names_them_and_cannot_speak_for_another(guard_home: Path) -> None:
    """With alice's token the journal says alice; a header or a hello naming bob is refused."""
    async with running(daemon_config()) as daemon:
        alice = _client(daemon, "alice")
        pid = await queue_proposal(daemon)
        forged = await alice.command(Reject("r1", pid, "as bob"), "bob")
        assert not forged.ok and "alice's own credential" in forged.reason
        hello_refused = ""
        try:
            async with alice.connect("bob"):
                pass
        except* DaemonError as group:
            hello_refused = " ".join(str(e) for e in group.exceptions)
        assert "refused hello" in hello_refused and "alice's own credential" in hello_refused
        async with alice.connect("alice") as session:
            reply = await session.send(Reject(session.next_id(), pid, "mine"))
            assert reply.ok
        decision = next(e for e in journal(daemon) if isinstance(e, DecisionRecorded))
        assert (decision.operator, decision.credential) == ("alice", "alice")


async def test_four_eyes_counts_credentials_not_names(guard_home: Path) -> None:
    """One shared token under two names cannot make two approvals; two people's own credentials can."""
    async with running(daemon_config(operators={"four_eyes_notional": 1000})) as daemon:
        shared = ApiClient.from_config(daemon.config)
        pid = await queue_proposal(daemon)
        first = await shared.command(Approve("s1", pid, 1), "alice")
        assert first.ok and "1 of 2" in first.reason
        second = await shared.command(Approve("s2", pid, 1), "mallory-as-bob")
        assert not second.ok and "different operator's own credential" in second.reason
        assert daemon.desk.state.proposals[pid].status.value == "PENDING"

        bob = _client(daemon, "bob")
        executed = await bob.command(Approve("b1", pid, 1), "bob")
        assert executed.ok and executed.data["status"] == "FILLED"
        counted = [e for e in journal(daemon) if isinstance(e, ApprovalCounted)]
        assert [c.credential for c in counted] == ["shared"]


async def test_a_repeated_command_id_gets_its_first_answer_and_does_nothing(guard_home: Path) -> None:
    """The same ClosePosition frame three times closes once; a captured Rearm replayed after a kill re-arms
    nothing; the same holds across a restart."""
    config = daemon_config()
    async with running(config) as daemon:
        client = ApiClient.from_config(daemon.config)
        await wait_until(lambda: SYMBOL in daemon.desk.marks)
        opened = await client.command(Propose("o1", SYMBOL, Side.BUY, Decimal("0.03"), Decimal(2)), "alice")
        approved = await client.command(Approve("o2", opened.data["proposal_id"], 1), "alice")
        assert approved.ok
        close = ClosePosition("close-1", SYMBOL, Decimal("0.01"), "trim")
        answers = [await client.command(close, "alice") for _ in range(3)]
        assert [a.ok for a in answers] == [True, True, True]
        assert [a.data.get("repeat", False) for a in answers] == [False, True, True]
        assert daemon.desk.state.account.positions[SYMBOL].qty == Decimal("0.02")

        await client.command(Kill("k1", "drill"), "alice")
        await wait_until(lambda: not daemon.desk.state.kill_in_progress)
        rearm = Rearm("rearm-1", REARM_PHRASE, "after the drill")
        assert (await client.command(rearm, "alice")).ok
        await client.command(Kill("k2", "second drill"), "alice")
        await wait_until(lambda: not daemon.desk.state.kill_in_progress)
        replayed = await client.command(rearm, "alice")
        assert replayed.data.get("repeat") is True
        assert daemon.desk.state.trading_state is TradingState.HALTED
        closes = daemon.desk.state.close_count
    async with running(config) as restarted:
        client = ApiClient.from_config(restarted.config)
        again = await client.command(close, "alice")
        assert again.ok and again.data.get("repeat") is True
        assert restarted.desk.state.close_count == closes


async def test_a_source_may_only_propose(guard_home: Path) -> None:
    """A source's credential trying every operator command over REST is refused, each refusal is journaled,
    and nothing changes; its own proposal is queued under its name; the WebSocket is not its to open."""
    async with running(daemon_config()) as daemon:
        bot = _client(daemon, "freqtrade", Scope.SOURCE)
        daemon.hub.presence.heard_from("alice")
        await wait_until(lambda: SYMBOL in daemon.desk.marks)
        propose = Propose("p1", SYMBOL, Side.BUY, Decimal("0.01"), Decimal(1), reason="cross")
        proposed = await bot.command(propose, "freqtrade")
        assert proposed.ok, proposed.reason
        pid = proposed.data["proposal_id"]
        assert daemon.desk.state.proposals[pid].proposal.source == "freqtrade"
        before = daemon.desk.state.snapshot()
        commands = [
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
            CancelOrder("c12", pid),
            AmendOrder("c13", pid, price=Decimal("1")),
        ]
        for command in commands:
            reply = await bot.command(command, "freqtrade")
            assert not reply.ok and "may propose" in reply.reason, type(command).__name__
        refused = [e for e in journal(daemon) if isinstance(e, CommandRefused) and e.operator == "freqtrade"]
        assert len(refused) == len(commands)
        after = daemon.desk.state.snapshot()
        for key in ("trading_state", "orders", "account", "risk_limits", "model_paused", "acknowledgments"):
            assert after[key] == before[key], key
        assert daemon.desk.state.proposals[pid].status.value == "PENDING"
        endpoint = bot.endpoint()
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=endpoint.socket),
                headers={"Authorization": f"Bearer {endpoint.token}"},
            ) as http,
            http.get(f"{endpoint.base_url}/v1/snapshot") as response,
        ):
            assert response.status == 403


async def test_a_revoked_token_is_refused_at_once(guard_home: Path) -> None:
    """`guard operator revoke` takes effect on the daemon's next request, even on an open WebSocket."""
    async with running(daemon_config()) as daemon:
        store = CredentialStore(daemon.paths.root)
        store.add("carol", Scope.OPERATOR)
        carol = _TokenClient(daemon, store.token_file("carol", Scope.OPERATOR).read_text().strip())
        async with carol.connect("carol") as session:
            store.revoke("carol")
            with pytest.raises(DaemonError):  # refused, and the connection is ended
                await session.send(PauseModel(session.next_id(), "x"), reply_within=5)
        with pytest.raises(DaemonError, match="refused the token"):
            await carol.command(PauseModel("p2", "x"), "carol")
        assert not daemon.desk.state.model_paused


SECRET_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOrMKUN3Ih8p6ht3zaYHQ2WydxEBfYBGHQ5r0Cl5tB"


async def test_a_secret_typed_into_every_free_text_field_reaches_no_record(
    guard_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control token, a venue-style key and a bearer header typed into every reason: none of them is in the
    journal file, the daemon's log or an export."""
    log = io.StringIO()
    redactor = configure("info", "json", stream=log)
    try:
        async with running(daemon_config()) as daemon:
            daemon.redactor = redactor
            token = daemon.paths.token.read_text().strip()
            secrets = [token, SECRET_KEY, "Zp0q8sK2LmN4oP6rS9tU1vW3xY5zA7bC"]
            text = f"key {SECRET_KEY} token={token} Authorization: Bearer Zp0q8sK2LmN4oP6rS9tU1vW3xY5zA7bC"
            client = ApiClient.from_config(daemon.config)
            await wait_until(lambda: SYMBOL in daemon.desk.marks)
            propose = Propose("s1", SYMBOL, Side.BUY, Decimal("0.01"), Decimal(1), reason=text)
            proposed = await client.command(propose, "a")
            pid = proposed.data["proposal_id"]
            second = await client.command(Propose("s2", SYMBOL, Side.SELL, Decimal("0.01"), Decimal(1)), "a")
            for command in (
                Reject("s3", pid, text),
                Approve("s4", second.data["proposal_id"], 1, reason=text),
                PauseModel("s5", text),
                ResumeModel("s6", text),
                SetRiskLimit("s7", "max_leverage", "2", text),
                ClosePosition("s8", SYMBOL, reason=text),
                Kill("s9", text),
                Rearm("s10", REARM_PHRASE, text),
                ReenableThrottle("s11", text),
            ):
                await client.command(command, "a")
            wal = daemon.paths.journal.with_name(daemon.paths.journal.name + "-wal")
            journal_bytes = daemon.paths.journal.read_bytes() + wal.read_bytes()
    finally:
        structlog.reset_defaults()
    export = tmp_path / "events.csv"
    from guard.cli import main

    assert main(["journal", "export", "--out", str(export)]) == 0
    for secret in secrets:
        assert secret.encode() not in journal_bytes
        assert secret not in log.getvalue()
        assert secret not in export.read_text()
    assert "[redacted]" in export.read_text()


def test_guard_operator_add_list_rotate_revoke(guard_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command line issues, lists, rotates and revokes credentials; token files are the owner's alone."""
    from guard.cli import main

    assert main(["operator", "add", "dana"]) == 0
    token_file = guard_home / "operators" / "dana.token"
    first = token_file.read_text().strip()
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    assert main(["operator", "add", "dana"]) == 2
    assert "rotate dana" in capsys.readouterr().err
    assert main(["operator", "rotate", "dana"]) == 0
    assert token_file.read_text().strip() != first
    assert main(["source", "add", "tv-alerts"]) == 0
    assert (guard_home / "sources" / "tv-alerts.token").exists()
    capsys.readouterr()
    assert main(["operator", "list"]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"dana\s+active", listing) and "tv-alerts" not in listing
    assert main(["operator", "revoke", "dana"]) == 0
    assert not token_file.exists()
    assert main(["operator", "list"]) == 0
    assert re.search(r"dana\s+revoked", capsys.readouterr().out)
    data = json.loads((guard_home / "credentials.json").read_text())
    assert all("token_sha256" in c for c in data["credentials"])
