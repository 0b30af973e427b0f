"""Propose through guard from any program, and learn what a person decided: `guard.client`.

    from guard.client import GuardClient

    with GuardClient(source="my-bot") as guard:              # GUARD_SOURCE / GUARD_TOKEN / GUARD_HOME
        pid = guard.propose("BTC/USDT:USDT", "buy", qty="0.01", why="breakout above the range")
        decision = guard.wait_decision(pid, timeout=120)     # Filled / Rejected / Expired / Killed / Failed
        print(decision)

`AsyncGuardClient` is the same for asyncio. A source's credential (`guard source add NAME`) may only propose
and read its own proposals: a person decides. See docs/sources.md.
"""

from guard.client.aio import AsyncGuardClient
from guard.client.decisions import Decision, Expired, Failed, Filled, Killed, ProposalId, Refused, Rejected
from guard.client.errors import (
    AnswerLost,
    CredentialRefused,
    DaemonNotRunning,
    DecisionTimeout,
    GuardClientError,
    NotConfigured,
    OutOfScope,
    ProposalRefused,
    UnknownProposal,
)
from guard.client.sync import GuardClient

__all__ = [
    "AnswerLost",
    "AsyncGuardClient",
    "CredentialRefused",
    "DaemonNotRunning",
    "Decision",
    "DecisionTimeout",
    "Expired",
    "Failed",
    "Filled",
    "GuardClient",
    "GuardClientError",
    "Killed",
    "NotConfigured",
    "OutOfScope",
    "ProposalId",
    "ProposalRefused",
    "Refused",
    "Rejected",
    "UnknownProposal",
]
