"""Operator commands from the wire, carried out by the desk. Every reply comes after the journal commit.

Bad input and guard's own errors become refusals (`Reply.ok` False) naming what was wrong; anything
else a command raises is our bug, which the server answers and logs (see `ApiServer._run`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import structlog

from guard.api.protocol import (
    MAX_DIGITS,
    MAX_EXPONENT,
    Acknowledge,
    Approve,
    ClosePosition,
    Command,
    Heartbeat,
    Hello,
    Kill,
    Override,
    PauseModel,
    Propose,
    Rearm,
    ReenableThrottle,
    Reject,
    Reply,
    ResumeModel,
    SetRiskLimit,
)
from guard.approval.desk import ApprovalDesk, CommandResult
from guard.domain import OrderType, ProposalRequest
from guard.errors import BadInput, GuardError, InvalidCommand

log = structlog.get_logger(__name__)

Spawn = Callable[[Any], "asyncio.Task[Any]"]


class CommandHandler:
    """Runs one command for one operator and says how it went."""

    def __init__(self, desk: ApprovalDesk, spawn: Spawn) -> None:
        """
        Args:
            spawn: starts a task owned by the server's task group; the kill switch's clean-up runs
                there after the halt is journaled and acknowledged.
        """
        self._desk = desk
        self._spawn = spawn

    async def handle(self, command: Command, operator: str, answered: asyncio.Future[None] | None = None) -> Reply:
        """Carry out `command`. `answered`, resolved by the caller once the reply is on its way, lets a
        kill's clean-up wait for the operator to hear "HALTED" first."""
        try:
            return await self._dispatch(command, operator, answered)
        except BadInput as e:
            return Reply(command.id, False, str(e))
        except GuardError as e:
            log.error("command_failed", command=type(command).__name__, operator=operator, error=str(e))
            return Reply(command.id, False, f"failed: {e}")

    async def _dispatch(self, c: Command, operator: str, answered: asyncio.Future[None] | None) -> Reply:
        desk = self._desk
        match c:
            case Hello() | Heartbeat():
                return Reply(c.id, True)
            case Propose():
                r = await desk.propose(
                    ProposalRequest(
                        symbol=c.symbol,
                        side=c.side,
                        qty=c.qty,
                        leverage=c.leverage,
                        stop=c.stop,
                        take_profit=c.take_profit,
                        order_type=OrderType.LIMIT if c.limit_price is not None else OrderType.MARKET,
                        limit_price=c.limit_price,
                        why=f"proposed by {operator}" + (f": {c.reason}" if c.reason else ""),
                        source="operator",
                    )
                )
            case Approve():
                r = await desk.approve(
                    c.proposal_id, operator, version=c.version, reason=c.reason, confirm_novel=c.confirm_novel
                )
            case Override():
                r = await desk.override(
                    c.proposal_id,
                    operator,
                    c.edits,
                    version=c.version,
                    reason=c.reason,
                    confirm_risk_increase=c.confirm_risk_increase,
                    confirm_novel=c.confirm_novel,
                )
            case Reject():
                r = await desk.reject(c.proposal_id, operator, reason=c.reason)
            case Kill():
                return await self._kill(c, operator, answered)
            case Rearm():
                r = await desk.rearm(operator, c.acknowledgment, c.reason)
            case PauseModel():
                r = await desk.pause_model(operator, c.reason or "paused by operator")
            case ResumeModel():
                r = await desk.resume_model(operator, c.reason)
            case ClosePosition():
                r = await desk.close_position(c.symbol, operator, c.qty, c.reason)
            case SetRiskLimit():
                r = await desk.set_risk_limit(operator, c.key, _parse(c.value), c.reason)
            case Acknowledge():
                r = await desk.acknowledge(operator, c.kind, c.text)
            case ReenableThrottle():
                r = await desk.reenable_throttle(operator, c.reason)
            case _:  # pragma: no cover - decode_command only yields the types above
                return Reply(getattr(c, "id", ""), False, f"unsupported command {type(c).__name__}")
        return _reply(c.id, r)

    async def _kill(self, c: Kill, operator: str, answered: asyncio.Future[None] | None) -> Reply:
        """Reply once HALTED is journaled; cancelling and flattening go on and report through events."""
        halted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = self._spawn(self._desk.kill(operator, c.reason, on_halted=halted, answered=answered))
        done, _ = await asyncio.wait({halted, task}, return_when=asyncio.FIRST_COMPLETED)
        if halted in done or halted.done():
            return Reply(c.id, True, "HALTED", {"trading_state": self._desk.state.trading_state.value})
        report = task.result()
        return Reply(c.id, True, "HALTED", {"flat": report.flat, "problems": list(report.problems)})


def _reply(command_id: str, result: CommandResult) -> Reply:
    data: dict[str, Any] = {}
    if result.proposal is not None:
        data["proposal_id"] = result.proposal.id
        data["version"] = result.proposal.version
    if result.status is not None:
        data["status"] = result.status.value
    return Reply(command_id, result.ok, result.reason, data)


def _parse(value: str) -> Any:
    """A risk-limit value typed as text: a number when it looks like one (validated by the config rules).

    Raises:
        InvalidCommand: a number that is not finite ("Infinity", "sNaN") or of absurd size ("1e999999").
    """
    text = value.strip()
    try:
        number = Decimal(text)
    except ArithmeticError:
        return text
    if not number.is_finite():
        raise InvalidCommand(f"a risk limit must be a finite number, got {text!r}")
    if len(number.as_tuple().digits) > MAX_DIGITS or abs(number.adjusted()) > MAX_EXPONENT:
        raise InvalidCommand(
            f"a risk limit has at most {MAX_DIGITS} digits and lies within 1e{MAX_EXPONENT + 1}, got {text!r}"
        )
    if number == number.to_integral_value() and "." not in text and "e" not in text.lower():
        return int(number)
    return float(number)
