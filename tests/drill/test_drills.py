"""Every kill-switch drill, scripted, against a real daemon on the simulated exchange."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from guard.api.client import ApiClient
from guard.api.protocol import AlertRaised, Kill
from guard.config import Config, config_from_dict
from guard.drill.figures import DrillResult
from guard.drill.options import DrillOptions
from guard.drill.report import markdown
from guard.drill.runner import run_drill
from guard.drill.scenarios import SCENARIOS, scenario
from guard.paths import StatePaths
from tests.api.support import wait_for

ROOT = Path(__file__).resolve().parents[2]


async def _drill(name: str, home: Path) -> DrillResult:
    result = await run_drill(Config(), scenario(name), DrillOptions(scripted=True), home / "drill" / "home")
    sc = SCENARIOS[name]
    assert result.positions_left == 0 and result.orders_left == 0, result.failures
    assert result.detection_s is not None and result.detection_s <= sc.detection_bound_seconds
    assert result.detected_by in sc.detects  # the operator's API client received the guard's alert
    assert result.halted_s is not None and result.halted_s * 1000 <= sc.halt_bound_ms
    assert result.flat_s is not None and result.flat_s <= sc.flat_bound_seconds
    assert result.cancels_s and max(result.cancels_s) <= result.flat_s
    assert result.violations == []
    assert result.passed, result.failures
    return result


async def test_drill_flash_crash_scripted_ends_flat_within_bounds(guard_home: Path) -> None:
    """A 30 % crash latches the daily loss limit; the alert reaches the operator; the kill halts, cancels, flattens."""
    result = await _drill("flash-crash", guard_home)
    assert "daily loss limit" in result.alert_text or result.detected_by == "orders"
    assert result.positions_flattened >= 1


async def test_drill_feed_stall_scripted_ends_flat_within_bounds(guard_home: Path) -> None:
    """A stalled feed is flagged stale within a second or two, and the kill works without market data."""
    result = await _drill("feed-stall", guard_home)
    assert "stale" in result.alert_text


async def test_drill_operator_disconnect_scripted_ends_flat_within_bounds(guard_home: Path) -> None:
    """A console that drops off trips the dead-man switch; the alert reaches another screen and the kill flattens."""
    result = await _drill("operator-disconnect", guard_home)
    assert result.detected_by == "deadman"


async def test_drill_model_hang_scripted_ends_flat_within_bounds(guard_home: Path) -> None:
    """With inference stuck on its thread, the hang is detected and the kill still halts in milliseconds."""
    result = await _drill("model-hang", guard_home)
    assert result.detected_by == "model" and "hung" in result.alert_text


async def test_drill_runaway_model_scripted_latches_throttle(guard_home: Path) -> None:
    """Proposals at many times the normal rate trip the execution throttle, which stays latched through the kill."""
    result = await _drill("runaway-model", guard_home)
    assert result.detected_by == "throttle" and result.throttle_latched


def test_drill_exchange_outage_cli_writes_reports_and_history(guard_home: Path) -> None:
    """`guard drill exchange-outage --scripted` passes, writes Markdown, JSON and a PNG, and `history` lists it."""
    env = {**os.environ, "GUARD_HOME": str(guard_home)}
    run = subprocess.run(
        [sys.executable, "-m", "guard", "drill", "exchange-outage", "--scripted", "--json"],
        capture_output=True,
        text=True,
        cwd=guard_home,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["passed"] and report["positions_left"] == 0 and report["orders_left"] == 0
    assert report["detected_by"] == "feed" and report["violations"] == []
    (directory,) = (guard_home / "drills").iterdir()
    for name in ("report.md", "report.json", "chart.png"):
        assert (directory / name).stat().st_size > 0
    assert (directory / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    listed = subprocess.run(
        [sys.executable, "-m", "guard", "drill", "history"],
        capture_output=True,
        text=True,
        cwd=guard_home,
        env=env,
        timeout=60,
    )
    assert listed.returncode == 0 and "exchange-outage" in listed.stdout and "pass" in listed.stdout


def test_drill_cli_names_every_scenario() -> None:
    """The command line offers exactly the scenarios the drill package defines (and `history`)."""
    from guard.cli import build_parser

    drill = build_parser()._subparsers._group_actions[0].choices["drill"]  # type: ignore[union-attr]
    (scenario_action,) = [a for a in drill._actions if a.dest == "scenario"]
    assert tuple(scenario_action.choices) == (*SCENARIOS, "history")


async def test_drill_operator_driven_times_the_person_at_the_console(guard_home: Path) -> None:
    """Without --scripted the drill waits for a console, shows it "DRILL: ...", and times the person's kill."""
    home = guard_home / "drill" / "home"
    config = config_from_dict({"api": {"transport": "tcp", "port": 0}})
    person = ApiClient(config.api, StatePaths(home))

    async def attach_and_kill() -> None:
        async with asyncio.timeout(60):
            while not (home / "endpoint").exists() or not (home / "token").exists():  # noqa: ASYNC110 - files
                await asyncio.sleep(0.05)
            async with person.connect("alice") as console:
                await wait_for(console, lambda m: isinstance(m, AlertRaised) and m.alert.kind == "drill", 60)
                await asyncio.sleep(0.3)  # a person's reaction
                reply = await console.send(Kill(console.next_id(), "drill: I saw it"))
                assert reply.ok

    async with asyncio.TaskGroup() as tg:
        tg.create_task(attach_and_kill())
        options = DrillOptions(scripted=False, operator_timeout_seconds=60)
        result = await run_drill(config, scenario("feed-stall"), options, home)
    assert result.mode == "operator" and result.passed, result.failures
    assert result.reaction_s is not None and 0.3 <= result.reaction_s < 5
    assert result.positions_left == 0 and result.orders_left == 0 and result.violations == []
    report = markdown(result)
    assert "(operator-driven: alice pulled the kill)" in report and "operator operator" not in report


def test_drill_report_says_a_counterfactual_gain_as_a_gain() -> None:
    """Holding would have made money: the report says "gained 9.23 USDT", never "lost -9.23"; a loss says lost."""
    result = DrillResult(
        scenario="flash-crash",
        title="A flash crash",
        mode="scripted",
        started_at="2026-12-06T04:00:00Z",
        detection_s=0.2,
        reaction_s=0.25,
        halted_s=0.01,
        halted_ack_ms=3.0,
        kill_internal_ms=40.0,
        cancels_s=[],
        last_cancel_s=None,
        flat_s=0.1,
        positions_left=0,
        orders_left=0,
        orders_cancelled=0,
        positions_flattened=1,
        loss_at_flat=4.1,
        counterfactual_loss=-9.23,
        detected_by="feed",
        alert_text="stale",
        violations=[],
        problems=[],
        bounds={"detection_s": 5, "halted_ms": 100, "flat_s": 5},
        passed=True,
        failures=[],
        throttle_latched=False,
        notes=[],
        timeline={},
        samples=[],
        journal_events=[],
        home="/tmp/x",
    )
    gain = markdown(result)
    assert "would have gained 9.23 USDT" in gain and "-9.23" not in gain and "(scripted operator)" in gain
    assert "would have lost 9.23 USDT" in markdown(dataclasses.replace(result, counterfactual_loss=9.23))
