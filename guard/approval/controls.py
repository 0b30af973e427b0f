"""Operator controls beside the queue: re-arm, risk acknowledgments, the throttle, risk limits, pausing the
model, closing a position. Each is journaled with who, what and why, or refused with the reason."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import structlog

from guard.approval.answers import CommandResult, outcome, refuse
from guard.approval.execution import Execution, order_id, reducing_order
from guard.approval.gate import Gate
from guard.approval.killswitch import KillSwitch
from guard.approval.limits import SECTION, limit_key, limit_text, risk_increase
from guard.approval.recorder import Recorder
from guard.approval.settings import DeskSettings
from guard.config import replace_setting
from guard.domain import AcknowledgmentKind, OrderPurpose, TradingState
from guard.errors import ConfigError, InvalidCommand
from guard.events import (
    AcknowledgmentRecorded,
    ModelPaused,
    ModelResumed,
    OrderFilled,
    RiskLimitChanged,
    ThrottleReenabled,
    TradingStateChanged,
)

log = structlog.get_logger(__name__)

REARM_PHRASE = "RE-ARM"
"""What an operator types to leave HALTED or REDUCING."""

ACKNOWLEDGMENT_PHRASES: Mapping[AcknowledgmentKind, str] = {
    AcknowledgmentKind.MODEL_PROPOSALS: "I UNDERSTAND THE MODEL CAN BE WRONG",
    AcknowledgmentKind.LEVERAGE: "I UNDERSTAND LEVERAGE CAN LIQUIDATE ME",
}
"""What an operator types to record each risk acknowledgment."""


def typed_matches(typed: str, phrase: str) -> bool:
    """The operator typed the phrase: case and runs of spaces aside."""
    return " ".join(typed.split()).upper() == phrase


class Controls:
    """The operator commands that are not decisions on a proposal (the kill switch aside)."""

    def __init__(
        self,
        recorder: Recorder,
        execution: Execution,
        kill_switch: KillSwitch,
        gate: Gate,
        settings: DeskSettings,
    ) -> None:
        self._recorder = recorder
        self._state = recorder.state
        self._execution = execution
        self._kill_switch = kill_switch
        self._gate = gate
        self._settings = settings

    async def _refused(self, operator: str, command: str) -> CommandResult | None:
        """The refusal when the journal cannot record this command, else None."""
        if why := self._gate.journal_refusal():
            return await refuse(self._recorder, operator, command, None, why)
        return None

    async def rearm(self, operator: str, acknowledgment: str, reason: str) -> CommandResult:
        """Leave HALTED or REDUCING. Needs the typed phrase RE-ARM; nothing else ever does this."""
        state = self._state
        if state.trading_state is TradingState.ACTIVE:
            return await refuse(self._recorder, operator, "rearm", None, "trading is already ACTIVE")
        if refused := await self._refused(operator, "rearm"):
            return refused
        why = ""
        if state.kill_in_progress:
            why = "the kill switch is still cleaning up"
            if self._kill_switch.resuming:
                problems = "; ".join(self._kill_switch.resume_problems)
                why = "the kill interrupted by the restart is still being completed" + (
                    f" (last attempt: {problems})" if problems else ""
                )
        elif not typed_matches(acknowledgment, REARM_PHRASE):
            why = f"type {REARM_PHRASE} exactly to re-arm"
        if why:
            return await refuse(self._recorder, operator, "rearm", None, why)
        await self._recorder.commit(
            [
                TradingStateChanged(
                    self._recorder.now(),
                    state.trading_state,
                    TradingState.ACTIVE,
                    f"re-armed by {operator}" + (f": {reason}" if reason else ""),
                    operator,
                )
            ]
        )
        log.warning("trading_rearmed", operator=operator, reason=reason)
        return CommandResult(True, "ACTIVE")

    async def acknowledge(self, operator: str, kind: AcknowledgmentKind, text: str) -> CommandResult:
        """Record a typed risk acknowledgment, bound to this config (and model)."""
        command = f"acknowledge {kind.value}"
        if refused := await self._refused(operator, command):
            return refused
        phrase = ACKNOWLEDGMENT_PHRASES[kind]
        if not typed_matches(text, phrase):
            return await refuse(self._recorder, operator, command, None, f'type "{phrase}" exactly')
        settings = self._settings
        await self._recorder.commit(
            [
                AcknowledgmentRecorded(
                    self._recorder.now(), kind, operator, phrase, settings.config_hash, settings.model_hash
                )
            ]
        )
        log.info("acknowledgment_recorded", kind=kind.value, operator=operator)
        return CommandResult(True, f"{kind.value} acknowledged")

    async def reenable_throttle(self, operator: str, reason: str) -> CommandResult:
        """Let entries through again after the order throttle tripped."""
        if refused := await self._refused(operator, "reenable_throttle"):
            return refused
        if not self._state.throttle_latched:
            return await refuse(self._recorder, operator, "reenable_throttle", None, "the throttle is not tripped")
        await self._recorder.commit([ThrottleReenabled(self._recorder.now(), operator, reason)])
        return CommandResult(True, "throttle re-enabled")

    async def set_risk_limit(
        self, operator: str, key: str, value: Any, reason: str, confirm_risk_increase: bool = False
    ) -> CommandResult:
        """Change one risk limit at run time, validated like the config file and journaled. A change that loosens
        a limit (more leverage, a larger notional or daily loss, a lower confidence floor) needs
        `confirm_risk_increase`, as an override that adds risk does.

        Raises:
            InvalidCommand: an unknown key, or a value the config would refuse.
        """
        if refused := await self._refused(operator, "set_risk_limit"):
            return refused
        key = limit_key(key)
        limits = self._state.limits
        try:
            new_limits = replace_setting(limits, SECTION, key, value)
        except ConfigError as e:
            raise InvalidCommand(str(e)) from e
        old, new = getattr(limits, key), getattr(new_limits, key)
        riskier = risk_increase(key, old, new)
        if riskier and not confirm_risk_increase:
            why = f"this change increases risk ({riskier}): confirm the increase to proceed"
            return await refuse(self._recorder, operator, "set_risk_limit", None, why)
        old_text, new_text = limit_text(old), limit_text(new)
        await self._recorder.commit([RiskLimitChanged(self._recorder.now(), operator, key, old_text, new_text, reason)])
        log.warning("risk_limit_changed", operator=operator, key=key, old=old_text, new=new_text, reason=reason)
        return CommandResult(True, f"{SECTION}.{key} {old_text} -> {new_text}")

    async def pause_model(self, operator: str, reason: str) -> CommandResult:
        """Stop taking the model's proposals until someone resumes it."""
        if refused := await self._refused(operator, "pause_model"):
            return refused
        await self._recorder.commit([ModelPaused(self._recorder.now(), operator, reason)])
        return CommandResult(True, "model paused")

    async def resume_model(self, operator: str, reason: str) -> CommandResult:
        """Take the model's proposals again."""
        if refused := await self._refused(operator, "resume_model"):
            return refused
        if not self._state.model_paused:
            return await refuse(self._recorder, operator, "resume_model", None, "the model is not paused")
        await self._recorder.commit([ModelResumed(self._recorder.now(), operator, reason)])
        return CommandResult(True, "model resumed")

    async def close_position(self, symbol: str, operator: str, qty: Decimal | None, reason: str) -> CommandResult:
        """Close (or with `qty`, reduce) a position with a reduce-only market order."""
        if refused := await self._refused(operator, "close"):
            return refused
        state = self._state
        position = state.account.position(symbol)
        if position is None:
            return await refuse(self._recorder, operator, "close", None, f"no open position in {symbol}")
        if state.trading_state is TradingState.HALTED:
            return await refuse(
                self._recorder, operator, "close", None, "trading is HALTED: the kill switch owns positions"
            )
        request = reducing_order(
            order_id(state.journal_id, f"C{state.close_count + 1}"), position, OrderPurpose.CLOSE, qty
        )
        reports = await self._execution.send(request)
        log.info("position_close_sent", symbol=symbol, operator=operator, qty=str(request.qty), reason=reason)
        filled = any(isinstance(r, OrderFilled) for r in reports)
        return CommandResult(filled, outcome(None, reports))
