"""The scripted operator: the decision a person would make, as a pure function of a proposal.

Replay calls it in-process; drills and the live determinism test call the same function on the
proposals the daemon pushes over the control API, so "the same operator" means the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from guard.domain import Proposal, Verdict


class OperatorPolicy(StrEnum):
    APPROVE_ALL = "approve-all"
    """Approve every proposal (novel ones included: the confirmation is given)."""
    GUARDED = "guarded"
    """Approve only when every risk check passes, confidence is high enough and the input is not novel."""
    NEVER = "never"
    """Reject everything: what the account does with no trading at all."""


@dataclass(frozen=True, slots=True)
class OperatorDecision:
    """Approve or reject, with the reason the operator records."""

    approve: bool
    reason: str
    confirm_novel: bool = False


@dataclass(frozen=True, slots=True)
class ScriptedOperator:
    """A deterministic operator.

    Attributes:
        policy: how it decides.
        min_confidence: the guarded operator approves only at or above this confidence.
        name: the operator id its decisions are recorded under.
    """

    policy: OperatorPolicy
    min_confidence: float = 0.6
    name: str = "scripted-operator"

    def decide(self, proposal: Proposal) -> OperatorDecision:
        """Decide on one proposal as shown."""
        match self.policy:
            case OperatorPolicy.NEVER:
                return OperatorDecision(False, "scripted: never approves")
            case OperatorPolicy.APPROVE_ALL:
                return OperatorDecision(True, "scripted: approves everything", confirm_novel=True)
        if proposal.novel:
            return OperatorDecision(False, "scripted (guarded): novel input, the model is guessing")
        if proposal.confidence < self.min_confidence:
            return OperatorDecision(
                False, f"scripted (guarded): confidence {proposal.confidence:.0%} below {self.min_confidence:.0%}"
            )
        failing = [c.name for c in proposal.checks if c.verdict is not Verdict.PASS]
        if failing:
            return OperatorDecision(False, f"scripted (guarded): checks not all passing ({', '.join(failing)})")
        return OperatorDecision(True, "scripted (guarded): every check passes")
