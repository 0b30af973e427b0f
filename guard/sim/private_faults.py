"""The faults the simulated exchange's private API can inject, and the rules that say when.

`PrivateFaults` keeps what a script or the admin API asked to break (`inject`) and hands each
request the rule that applies to it (`take`), counting what fired. `guard.sim.private` acts on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import structlog

log = structlog.get_logger(__name__)


class PrivateFault(StrEnum):
    """Faults of the private API (names as the admin API and tests spell them)."""

    TIMEOUT_AFTER_ACCEPT = "timeout-after-accept"
    """The order is accepted; its answer is held past the client's timeout."""
    TIMEOUT_BEFORE_ACCEPT = "timeout-before-accept"
    """The request is held before it is processed, then processed: accepted late if its
    timestamp is still within recvWindow, refused (-1021) if not."""
    ERROR_AFTER_ACCEPT = "5xx-after-accept"
    ERROR_BEFORE_ACCEPT = "5xx-before-accept"
    DUPLICATE_ID = "duplicate-client-order-id"
    """The order is accepted, but the answer is Binance's -4116 "ClientOrderId is duplicated"."""
    PARTIAL_FILL = "partial-fill"
    """Only half of what would fill now fills (a market order's rest expires)."""
    LOOKUP_ERRORS = "lookup-errors"
    """Order queries (by id or client id) answer 503."""
    POSITIONS_FAIL = "positions-fail"
    """Position queries answer 503."""


ORDER_FAULTS = frozenset(
    {
        PrivateFault.TIMEOUT_AFTER_ACCEPT,
        PrivateFault.TIMEOUT_BEFORE_ACCEPT,
        PrivateFault.ERROR_AFTER_ACCEPT,
        PrivateFault.ERROR_BEFORE_ACCEPT,
        PrivateFault.DUPLICATE_ID,
        PrivateFault.PARTIAL_FILL,
    }
)


@dataclass(slots=True)
class FaultRule:
    """One injected fault: which, for which client order id (None: any), how many more times, how long."""

    fault: PrivateFault
    client_id: str | None
    remaining: int
    hold_seconds: float


class PrivateFaults:
    """The faults still to fire, and how many of each have fired.

    Args:
        fired: counts fault name -> times it fired (the private API's statistics).
    """

    def __init__(self, fired: dict[str, int]) -> None:
        self._rules: list[FaultRule] = []
        self._fired = fired

    def inject(self, fault: PrivateFault | str, client_order_id: str | None, count: int, hold_seconds: float) -> None:
        """Break the next `count` requests about `client_order_id` (None: any) with `fault`."""
        self._rules.append(FaultRule(PrivateFault(fault), client_order_id, count, hold_seconds))

    def clear(self) -> None:
        """Forget every fault not yet fired."""
        self._rules.clear()

    def take(self, kinds: frozenset[PrivateFault], client_id: str | None) -> FaultRule | None:
        """The first rule of one of `kinds` that applies to a request about `client_id`, used up once; or None."""
        for rule in self._rules:
            if rule.fault in kinds and rule.remaining > 0 and rule.client_id in (None, client_id):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
                self._fired[rule.fault] = self._fired.get(rule.fault, 0) + 1
                log.info("sim.private_fault", fault=rule.fault.value, client_order_id=client_id)
                return rule
        return None
