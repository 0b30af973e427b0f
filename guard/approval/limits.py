"""The risk limits an operator may change at run time: what each is now, what it allows, who changed it last,
and whether a change adds risk (which, like an override that adds risk, must be confirmed on its own).

Every field of the config's `[risk]` section can change at run time (`SetRiskLimit`); a change is validated
exactly like the config file, journaled with who, what and why, and folded into the state like any event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from guard.config import RiskSection, setting_allowed
from guard.events import RiskLimitChanged

SECTION = "risk"
LOOSER_WHEN_LOWER = frozenset({"min_confidence", "liquidation_buffer"})
"""Limits that guard less as they fall (a lower confidence floor, a thinner liquidation buffer); every other
one guards less as it rises (leverage, notionals, the daily loss, the order throttle)."""


@dataclass(frozen=True, slots=True)
class LimitInfo:
    """One run-time limit as an operator sees it."""

    key: str
    """The full key, as the config file and `guard limits set` name it ("risk.max_leverage")."""
    value: str
    allowed: str
    """What it allows, in words ("a finite number >= 1 and <= 20")."""
    riskier: str
    """Which way adds risk: "higher" or "lower"."""
    last_change: RiskLimitChanged | None


def limit_key(key: str) -> str:
    """The field name of a risk limit given with or without its section ("risk.max_leverage" -> "max_leverage")."""
    key = key.strip()
    return key[len(SECTION) + 1 :] if key.startswith(f"{SECTION}.") else key


def limit_text(value: Any) -> str:
    """A limit's value as journaled and shown: a number as written ("50000", "3.5"), never a quoted string.

    The text is JSON (a number, or a quoted string for a value that is not one), so folding it back is `json.loads`.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return json.dumps(value)


def risk_increase(key: str, old: Any, new: Any) -> str:
    """Words for how a change loosens a limit ("max_leverage 3 -> 5: higher adds risk"), or "" when it does not."""
    if not isinstance(old, int | float | Decimal) or not isinstance(new, int | float | Decimal):
        return ""
    looser = new < old if key in LOOSER_WHEN_LOWER else new > old
    if not looser:
        return ""
    way = "lower" if key in LOOSER_WHEN_LOWER else "higher"
    return f"{SECTION}.{key} {limit_text(old)} -> {limit_text(new)}: {way} adds risk"


def runtime_limits(limits: RiskSection, changes: dict[str, RiskLimitChanged]) -> list[LimitInfo]:
    """Every limit that can change at run time, in the config's order, with its last change."""
    return [
        LimitInfo(
            key=f"{SECTION}.{key}",
            value=limit_text(getattr(limits, key)),
            allowed=setting_allowed(SECTION, key).removeprefix("must be "),
            riskier="lower" if key in LOOSER_WHEN_LOWER else "higher",
            last_change=changes.get(key),
        )
        for key in RiskSection.__struct_fields__
    ]
