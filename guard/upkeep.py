"""The daemon's standing duties, each a loop in its task group: the kill switch finished whatever happened,
pending proposals expired on time, feed health journaled as it changes, the dead-man switch on heartbeats.

The daemon wires them up; what each one does to the desk lives here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from guard.api.clients import Presence
from guard.api.hub import Hub
from guard.approval.desk import ApprovalDesk
from guard.config import OperatorsSection
from guard.feed.process import FeedProcess

log = structlog.get_logger(__name__)

EXPIRY_SECONDS = 0.5
KILL_RETRY_SECONDS = 0.5
"""How often the daemon looks for a kill left unfinished; one that keeps failing is retried less often, never
given up."""
KILL_RETRY_MAX_SECONDS = 30.0
PRESENCE_SECONDS = 0.5


async def keep_kills(desk: ApprovalDesk, hub: Hub, first_round: asyncio.Event) -> None:
    """The kill switch always wins, whatever happened to the process or the prices.

    First, finish a kill that a previous process journaled and did not complete (invariant 11), trying
    again until flat. Then, on the paper venue (which fills only at prices the feed gives it), keep
    finishing a kill that could not get flat, e.g. one pulled before the first prices arrived: while
    HALTED by the kill switch, sweep once prices are known. (A real venue's watch sweeps for itself.)
    `first_round` is set once the first attempt is over.
    """
    if desk.deadman_unfinished:
        log.warning("deadman_resume_started", policy=desk.deadman_unfinished)
    if desk.kill_unfinished:
        log.warning("kill_resume_started", positions=len(desk.state.account.positions))
        hub.alert("critical", "kill", "completing the kill the previous daemon did not finish")
    backoff = KILL_RETRY_SECONDS
    while True:
        report = None
        if not desk.prices_missing_to_flatten():
            if desk.deadman_unfinished:
                await desk.finish_interrupted_deadman()
            if desk.kill_unfinished:
                report = await desk.finish_interrupted_kill()
            elif desk.broker.needs_marks:
                report = await desk.sweep_kill()
            first_round.set()
        if report is not None:
            hub.publish_status()
            log.warning("kill_finished_after_the_fact", flat=report.flat, problems=list(report.problems))
        backoff = KILL_RETRY_SECONDS if report is None or report.flat else min(backoff * 2, KILL_RETRY_MAX_SECONDS)
        await asyncio.sleep(backoff)


async def record_feed_health(feed: FeedProcess, desk: ApprovalDesk) -> None:
    changes: asyncio.Queue[Any] = asyncio.Queue(maxsize=10_000)
    feed.add_health_listener(lambda health: changes.put_nowait(health))
    for health in feed.health().values():
        await desk.record_feed_health(health)
    while True:
        await desk.record_feed_health(await changes.get())


async def expire(desk: ApprovalDesk) -> None:
    while True:
        await asyncio.sleep(EXPIRY_SECONDS)
        await desk.expire_due()


async def watch_presence(presence: Presence, desk: ApprovalDesk, operators: OperatorsSection) -> None:
    """The dead-man switch on operator heartbeats."""
    timeout = operators.heartbeat_timeout_seconds
    while True:
        await asyncio.sleep(PRESENCE_SECONDS)
        silent = presence.silent_for()
        if silent is not None and silent > timeout and desk.operator_present:
            await desk.operators_absent(silent, operators.deadman_policy)
