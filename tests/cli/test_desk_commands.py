"""`guard orders` and `guard limits` from a shell, against a real daemon: a resting limit seen, amended and
cancelled; a limit changed (an increase only when confirmed); each change found in the journal."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from guard.api.client import ApiClient
from guard.api.protocol import Approve, Propose, Reply
from guard.config import load_config
from guard.domain import Side
from tests.cli.conftest import Shell

BTC = "BTC/USDT:USDT"


def _api(shell: Shell, monkeypatch: pytest.MonkeyPatch) -> ApiClient:
    monkeypatch.setenv("GUARD_HOME", str(shell.home))
    return ApiClient.from_config(load_config(shell.home / "config.toml"))


async def _resting_limit(client: ApiClient) -> tuple[str, Decimal, Reply]:
    """Propose a buy limit 3% under the market and approve it: it rests. Returns its id, price and the reply."""
    async with asyncio.timeout(30):
        while not (prices := (await client.snapshot()).prices.get(BTC)):  # noqa: ASYNC110 - polls another process
            await asyncio.sleep(0.1)
    price = Decimal(int(prices[-1] * 0.97))
    propose = Propose("t-propose", BTC, Side.BUY, Decimal("0.01"), Decimal(2), limit_price=price, reason="cli test")
    proposed = await client.command(propose, "alice")
    assert proposed.ok, proposed.reason
    pid = proposed.data["proposal_id"]
    approved = await client.command(Approve("t-approve", pid, proposed.data["version"]), "alice")
    return pid, price, approved


def test_a_resting_limit_is_listed_amended_and_cancelled_from_the_shell(
    shell: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The approval of a limit says it rests; `guard orders` and `guard status` show it; amend moves it, cancel
    removes it, and the journal has who asked for each and why."""
    pid, price, approved = asyncio.run(_resting_limit(_api(shell, monkeypatch)))
    assert (approved.ok, approved.reason) == (True, f"placed, resting at {price}")

    listed = shell.run("orders")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split()[:4] == ["ORDER", "PROPOSAL", "KIND", "SIDE"]
    assert row.split()[:5] == [f"{pid}-E", pid, "limit", "entry", "buy"] and str(price) in row
    assert "-3." in row or "-2.9" in row  # about 3% under the mark
    status = shell.run("status")
    assert f"order    {pid}-E limit entry buy 0.01 {BTC} at {price}" in status.stdout

    lower = price - 100
    amended = shell.run(
        "orders",
        "amend",
        pid,
        "--price",
        str(lower),
        "--qty",
        "0.005",
        "--operator",
        "bob",
        "--reason",
        "closer to support",
    )
    assert amended.returncode == 0, amended.stderr
    assert f"{pid}-E amended: {pid}-E-A1 0.005 resting at {lower}" in amended.stdout
    assert f"{pid}-E-A1" in shell.run("orders", "list").stdout

    cancelled = shell.run("orders", "cancel", f"{pid}-E-A1", "--operator", "carol", "--reason", "changed my mind")
    assert (cancelled.returncode, cancelled.stdout.strip()) == (0, f"{pid}-E-A1 cancelled")
    assert shell.run("orders").stdout.strip() == "no resting orders"

    journal = shell.run("journal", "tail", "--type", "OrderAmendRequested", "--type", "OrderCancelRequested")
    assert journal.returncode == 0, journal.stderr
    amend, cancel = journal.stdout.splitlines()
    assert "OrderAmendRequested" in amend and 'replacement="' in amend and f"{pid}-E-A1" in amend
    assert 'operator="bob"' in amend and 'reason="closer to support"' in amend and f'new_price="{lower}' in amend
    assert "OrderCancelRequested" in cancel and 'operator="carol"' in cancel and 'reason="changed my mind"' in cancel


def test_cancel_of_what_does_not_rest_and_amend_without_a_change_are_refused(shell: Shell) -> None:
    """An unknown order is named back with where to look; an amend with nothing to change is bad input (exit 2)."""
    unknown = shell.run("orders", "cancel", "P999999", "--reason", "x")
    assert unknown.returncode == 1 and "no resting order P999999: see `guard orders`" in unknown.stderr
    nothing = shell.run("orders", "amend", "P999999", "--reason", "x")
    assert nothing.returncode == 2 and "give --price, --qty or both" in nothing.stderr
    no_reason = shell.run("orders", "cancel", "P999999")
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr


def test_limits_listed_and_changed_with_a_confirmation_for_more_risk(shell: Shell) -> None:
    """`guard limits` lists every limit with its range; raising leverage needs --confirm-risk-increase; each change
    is journaled as plain numbers and shows who made it."""
    listed = shell.run("limits")
    assert listed.returncode == 0, listed.stderr
    leverage = next(line for line in listed.stdout.splitlines() if line.startswith("risk.max_leverage "))
    assert leverage.split()[1] == "3" and ">= 1 and <= 20" in leverage and "(as configured)" in leverage

    refused = shell.run("limits", "set", "risk.max_leverage", "5", "--operator", "bob", "--reason", "more room")
    assert refused.returncode == 1
    assert "risk.max_leverage 3 -> 5: higher adds risk" in refused.stderr
    assert "--confirm-risk-increase" in refused.stderr and "risk.risk" not in refused.stderr

    raised = shell.run(
        "limits",
        "set",
        "risk.max_leverage",
        "5",
        "--operator",
        "bob",
        "--reason",
        "more room",
        "--confirm-risk-increase",
    )
    assert (raised.returncode, raised.stdout.strip()) == (0, "risk.max_leverage 3 -> 5")
    lowered = shell.run("limits", "set", "risk.max_order_notional", "10000", "--operator", "bob", "--reason", "tighter")
    assert lowered.returncode == 0, lowered.stderr

    after = shell.run("limits").stdout.splitlines()
    leverage = next(line for line in after if line.startswith("risk.max_leverage "))
    assert leverage.split()[1] == "5" and "bob, " in leverage and ": more room" in leverage
    journal = shell.run("journal", "tail", "--type", "RiskLimitChanged").stdout.splitlines()
    assert len(journal) == 2
    assert 'operator="bob" key="max_leverage" old="3" new="5" reason="more room"' in journal[0]
    assert 'key="max_order_notional" old="25000" new="10000"' in journal[1]  # never "\"25000\""
    assert "\\" not in "".join(journal)

    bad = shell.run("limits", "set", "risk.max_leverage", "50", "--reason", "x", "--confirm-risk-increase")
    assert bad.returncode == 1 and "risk.max_leverage = 50: must be >= 1 and <= 20" in bad.stderr
    assert "risk.risk" not in bad.stderr
