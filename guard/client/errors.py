"""What can go wrong when a program asks guard, each error saying what to fix.

Business answers are values (`guard.client.decisions`): a person rejecting a proposal is not an error.
These are the failures: nothing answers, the credential is wrong, the desk would not queue a proposal, or no
decision came in time.
"""

from __future__ import annotations

from guard.errors import DaemonError


class GuardClientError(DaemonError):
    """Base of the client's errors: the message says what happened and what to do about it."""


class NotConfigured(GuardClientError):
    """The client does not know which source it is, or where its token is."""


class DaemonNotRunning(GuardClientError):
    """Nothing answers where the daemon should be: start it with `guard up`."""


class AnswerLost(GuardClientError, TimeoutError):
    """The daemon did not answer in time: it may be stopping, or the machine badly overloaded."""


class CredentialRefused(GuardClientError):
    """The daemon refused the token: revoked, rotated, or from another state directory."""


class OutOfScope(GuardClientError):
    """The credential may not do this: a source proposes and reads its own proposals; a person decides."""


class UnknownProposal(GuardClientError):
    """No proposal with this id that this credential may see (a source sees only its own)."""


class ProposalRefused(GuardClientError):
    """The desk would not queue the proposal (risk, stale feed, no operator present, halted, bad input)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"guard refused the proposal: {reason}")
        self.reason = reason


class DecisionTimeout(GuardClientError, TimeoutError):
    """No decision within the time given. The proposal may still be decided later, until it expires."""

    def __init__(self, proposal_id: str, timeout: float, expires_at: int) -> None:
        super().__init__(
            f"no decision on {proposal_id} within {timeout:g} s; it stays pending until it expires "
            f"(at {expires_at} ms, the daemon's clock): treat it as no, and keep guard's approval.ttl_seconds "
            "within your own budget so guard expires it first"
        )
        self.proposal_id = proposal_id
        self.expires_at = expires_at
