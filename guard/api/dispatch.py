"""Commands from the wire, carried out by the desk. Every reply comes after the journal commit.

Who speaks is the credential's `Identity`, never what a client says of itself: a source's credential may
only propose; four-eyes counts credentials. Each command id is executed at most once per credential
(invariant 13): the command is recorded as received before it runs and its answer after, so a repeat
within the window (`COMMAND_WINDOW_MS`) gets the first answer again and changes nothing, across restarts
too. Free text (reasons) is scrubbed of secrets before anything records or logs it.

Bad input and guard's own errors become refusals (`Reply.ok` False) naming what was wrong; anything
else a command raises is our bug, which the server answers and logs (see `ApiServer._run`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import structlog

from guard.api.credentials import Identity, Scope
from guard.api.protocol import (
    MAX_DIGITS,
    MAX_EXPONENT,
    Acknowledge,
    AmendOrder,
    Approve,
    CancelOrder,
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
    ResumeSource,
    SetRiskLimit,
)
from guard.approval.desk import ApprovalDesk, CommandResult
from guard.domain import OrderType, ProposalRequest
from guard.errors import BadInput, GuardError, InvalidCommand
from guard.proposals.intake import Size, size_order
from guard.redaction import Scrubber

log = structlog.get_logger(__name__)

Spawn = Callable[[Any], "asyncio.Task[Any]"]

SOURCE_COMMANDS: tuple[type, ...] = (Propose,)
"""What a source's credential may send: it proposes; a person decides."""
FREE_TEXT = ("reason",)
"""Fields a person or a program types freely: scrubbed of secrets before anything records them."""


class CommandHandler:
    """Runs one command for one credential and says how it went."""

    def __init__(self, desk: ApprovalDesk, spawn: Spawn, scrub: Scrubber | None = None) -> None:
        """
        Args:
            spawn: starts a task owned by the server's task group; the kill switch's clean-up runs
                there after the halt is journaled and acknowledged.
            scrub: removes secrets from free text (known values and secret-shaped strings).
        """
        self._desk = desk
        self._spawn = spawn
        self._scrub = scrub or Scrubber()
        self._running: dict[tuple[str, str], asyncio.Future[Reply]] = {}
        """Commands being carried out now, by (credential, id): a repeat waits for the first one's answer."""

    async def handle(
        self, command: Command, who: Identity | str, answered: asyncio.Future[None] | None = None
    ) -> Reply:
        """Carry out `command` for `who` (an operator's name stands for a credential of that name). `answered`,
        resolved by the caller once the reply is on its way, lets a kill's clean-up wait for the operator to hear
        "HALTED" first."""
        identity = who if isinstance(who, Identity) else Identity(who, who, Scope.OPERATOR)
        if isinstance(command, (Hello, Heartbeat)):
            return Reply(command.id, True)
        command = self._scrubbed(command)
        if identity.scope is not Scope.OPERATOR and not isinstance(command, SOURCE_COMMANDS):
            return await self._out_of_scope(command, identity)
        key = (identity.credential, command.id)
        repeat = await self._repeat(key, command)
        if repeat is not None:
            return repeat
        desk = self._desk
        desk.command_received(*key, type(command).__name__, keep=isinstance(command, Kill))
        running: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._running[key] = running
        try:
            reply = await self._carry_out(command, identity, answered)
        except BaseException:
            running.cancel()
            raise
        finally:
            del self._running[key]
        desk.command_answered(*key, reply.ok, reply.reason, json.dumps(reply.data, default=str, sort_keys=True))
        running.set_result(reply)
        return reply

    async def _carry_out(self, command: Command, identity: Identity, answered: asyncio.Future[None] | None) -> Reply:
        try:
            return await self._dispatch(command, identity, answered)
        except BadInput as e:
            return Reply(command.id, False, str(e))
        except GuardError as e:
            log.error("command_failed", command=type(command).__name__, operator=identity.name, error=str(e))
            return Reply(command.id, False, f"failed: {e}")

    async def _repeat(self, key: tuple[str, str], command: Command) -> Reply | None:
        """The answer to a command id already received (None for a new one): its first answer, with
        `data.repeat` set; a wait for it while it runs; a refusal when a restart lost its answer."""
        running = self._running.get(key)
        if running is not None:
            first = await asyncio.shield(running)
            return Reply(command.id, first.ok, first.reason, {**first.data, "repeat": True})
        seen = self._desk.command_seen(*key)
        if seen is None:
            return None
        log.info("command_repeated", command=type(command).__name__, credential=key[0], id=key[1])
        if seen.answered:
            return Reply(command.id, seen.ok, seen.reason, {**json.loads(seen.data), "repeat": True})
        return Reply(
            command.id,
            False,
            f"command {command.id} was received before the daemon restarted and its answer was lost; it is not "
            "carried out again: see what happened with `guard status` and `guard journal tail`",
            {"repeat": True},
        )

    async def _out_of_scope(self, command: Command, identity: Identity) -> Reply:
        reason = (
            f"{identity.name} holds a {identity.scope.value} credential: it may propose and read its own proposals, "
            f"never {type(command).__name__}; a person decides"
        )
        await self._desk.refuse(identity.name, type(command).__name__, reason)
        log.warning("command_out_of_scope", command=type(command).__name__, credential=identity.credential)
        return Reply(command.id, False, reason)

    def _scrubbed(self, command: Command) -> Command:
        changes = {}
        for name in FREE_TEXT:
            text = getattr(command, name, None)
            if isinstance(text, str) and text:
                clean = self._scrub(text)
                if clean != text:
                    changes[name] = clean
        return msgspec.structs.replace(command, **changes) if changes else command

    async def _dispatch(self, c: Command, identity: Identity, answered: asyncio.Future[None] | None) -> Reply:
        operator, credential = identity.name, identity.credential
        desk = self._desk
        match c:
            case Hello() | Heartbeat():
                return Reply(c.id, True)
            case Propose():
                r = await desk.propose(self._request(c, identity))
            case Approve():
                r = await desk.approve(
                    c.proposal_id,
                    operator,
                    version=c.version,
                    reason=c.reason,
                    confirm_novel=c.confirm_novel,
                    credential=credential,
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
                    credential=credential,
                )
            case Reject():
                r = await desk.reject(c.proposal_id, operator, reason=c.reason, credential=credential)
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
                r = await desk.set_risk_limit(
                    operator, c.key, _parse(c.value), c.reason, confirm_risk_increase=c.confirm_risk_increase
                )
            case CancelOrder():
                r = await desk.cancel_order(c.order, operator, c.reason, credential)
            case AmendOrder():
                r = await desk.amend_order(
                    c.order, operator, price=c.price, qty=c.qty, reason=c.reason, credential=credential
                )
            case Acknowledge():
                r = await desk.acknowledge(operator, c.kind, c.text)
            case ReenableThrottle():
                r = await desk.reenable_throttle(operator, c.reason)
            case ResumeSource():
                r = await desk.resume_source(c.source, operator, c.reason)
            case _:  # pragma: no cover - decode_command only yields the types above
                return Reply(getattr(c, "id", ""), False, f"unsupported command {type(c).__name__}")
        return _reply(c.id, r)

    def _request(self, c: Propose, identity: Identity) -> ProposalRequest:
        """What guard proposes for `c`: sized at the mark (a source's capped by the limits), the claimed confidence
        and the "why" kept, named for who sent it."""
        desk = self._desk
        spec = desk.specs.get(c.symbol)
        if spec is None:
            raise InvalidCommand(f"unknown symbol {c.symbol!r}; known: {', '.join(desk.specs)}")
        source = identity.scope is Scope.SOURCE
        sized = size_order(
            Size(c.qty, c.notional, c.equity_fraction),
            c.leverage,
            spec=spec,
            price=c.limit_price or desk.marks.get(c.symbol),
            equity=desk.state.account.equity(desk.marks),
            limits=desk.limits(),
            cap=source,
        )
        why = f"proposed by {identity.name}" + (f": {c.reason}" if c.reason else "")
        return ProposalRequest(
            symbol=c.symbol,
            side=c.side,
            qty=sized.qty,
            leverage=sized.leverage,
            stop=c.stop,
            take_profit=c.take_profit,
            order_type=OrderType.LIMIT if c.limit_price is not None else OrderType.MARKET,
            limit_price=c.limit_price,
            # A claim is a source's to make and guard's to grade; a person's own idea carries none.
            confidence=float(c.confidence) if source and c.confidence is not None else 0.0,
            why=why + "".join(f" [{note}]" for note in sized.notes),
            source=identity.name if source else "operator",
        )

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
    return number  # exact for a notional; the config rules make a float of it where the setting is one
