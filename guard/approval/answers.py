"""The answer to an operator command, and a refusal put on record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from guard.approval.recorder import Recorder
from guard.domain import Proposal, ProposalStatus
from guard.events import CommandRefused, OrderFilled

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The answer to an operator command. `ok` is False for a refusal, with the reason."""

    ok: bool
    reason: str = ""
    proposal: Proposal | None = None
    status: ProposalStatus | None = None


async def refuse(
    recorder: Recorder, operator: str, command: str, proposal_id: str | None, reason: str
) -> CommandResult:
    """Journal who asked for what and why it was refused (left out while the journal fails), and say so."""
    await recorder.commit(
        [CommandRefused(recorder.now(), operator, command, proposal_id, reason)],
        durable=False,
        failing="drop",
    )
    log.info("command_refused", operator=operator, command=command, proposal_id=proposal_id, reason=reason)
    record = recorder.state.proposals.get(proposal_id or "")
    return CommandResult(False, reason, record.proposal if record else None, record.status if record else None)


def outcome(status: ProposalStatus | None, reports: Sequence[Any]) -> str:
    """What became of an order, for the operator: the proposal's status (or filled / not filled) and why."""
    reasons = [r.reason for r in reports if getattr(r, "reason", "")]
    text = status.value if status else ("filled" if any(isinstance(r, OrderFilled) for r in reports) else "not filled")
    return f"{text}: {'; '.join(reasons)}" if reasons else text
