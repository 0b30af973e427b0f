"""One setting at a time: msgspec converts a value against the setting's annotated type, and a refusal
is explained in words (the key, the value, what is allowed), never as msgspec's own message.

msgspec's `Meta` bounds cover ints, floats, strings and lists; `Money` gives a Decimal its range, `Says`
words a pattern. What msgspec cannot express (finite floats, Decimal ranges and places, repeated list
entries) is checked after it converts.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from guard.errors import ConfigProblem

MONEY_MAX = Decimal(1_000_000_000)
"""No amount of money in the config may exceed 1,000,000,000 (quote currency, USDT): past that a size
exceeds every venue's order limits and the float views of equity lose their cents."""
MONEY_PLACES = 8
"""Decimal places an amount of money may have (a satoshi of USDT); more is a typo or an attack."""


@dataclass(frozen=True, slots=True)
class Money:
    """The range of a Decimal setting (msgspec's `Meta` bounds apply to ints and floats only)."""

    gt: Decimal | None = None
    ge: Decimal | None = None
    le: Decimal = MONEY_MAX


@dataclass(frozen=True, slots=True)
class Says:
    """What a setting allows, in words, where its constraint (a pattern) does not say it by itself."""

    allowed: str


class Refused(Exception):
    """A value a setting does not allow; `problem` says which key, which value and what is allowed."""

    def __init__(self, problem: ConfigProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Rule:
    """How one setting is checked: msgspec converts against its annotated type; `extra` checks what
    msgspec cannot express (finite floats, Decimal ranges, repeats); `explain` says what is allowed."""

    key: str
    type: Any
    extra: Callable[[Any], str | None]
    explain: Callable[[Any], tuple[Any, str]]

    def convert(self, value: Any) -> Any:
        """The value as the setting's type.

        Raises:
            Refused: naming the key, the value and what is allowed.
        """
        try:
            converted = msgspec.convert(value, self.type)
        except msgspec.ValidationError:
            shown, allowed = self.explain(value)
            raise Refused(ConfigProblem(self.key, shown, allowed)) from None
        wrong = self.extra(converted)
        if wrong is not None:
            raise Refused(ConfigProblem(self.key, value, wrong))
        return converted


@dataclass(frozen=True, slots=True)
class SectionRules:
    """The rules of one config section, by key."""

    name: str
    cls: type[msgspec.Struct]
    rules: dict[str, Rule]

    def convert(self, key: str, value: Any) -> Any:
        """One setting's value as its type.

        Raises:
            Refused: an unknown key (the problem lists the keys there are), or a value the key does not allow.
        """
        rule = self.rules.get(key)
        if rule is None:
            raise Refused(ConfigProblem(f"{self.name}.{key}", value, f"unknown key; allowed: {', '.join(self.rules)}"))
        return rule.convert(value)

    def build(self, values: dict[str, Any]) -> tuple[Any, list[ConfigProblem]]:
        """The section from a TOML table, each bad or unknown key left at its default, and every problem."""
        checked = {}
        problems = []
        for key, value in values.items():
            try:
                checked[key] = self.convert(key, value)
            except Refused as refused:
                problems.append(refused.problem)
        return self.cls(**checked), problems


def _number(x: float | Decimal) -> str:
    """A bound as a person writes it: 20, 0.5, 1,000,000,000."""
    if x == int(x) and abs(int(x)) >= 10_000:
        return f"{int(x):,}"
    return str(x) if isinstance(x, Decimal) else f"{x:g}"


def _bounds(meta: Meta | Money) -> str:
    """What a range allows, e.g. "> 0 and <= 3600"."""
    lt = meta.lt if isinstance(meta, Meta) else None
    limits: tuple[tuple[str, float | Decimal | None], ...] = (
        (">", meta.gt),
        (">=", meta.ge),
        ("<", lt),
        ("<=", meta.le),
    )
    return " and ".join(f"{op} {_number(v)}" for op, v in limits if v is not None)


def _with(text: str, bounds: str) -> str:
    return f"{text} {bounds}" if bounds else text


def _no_extra(value: Any) -> str | None:
    return None


def _rule(key: str, tp: Any) -> Rule:
    """The rule for a setting of annotated type `tp`."""
    base: Any = tp
    metadata: tuple[Any, ...] = ()
    if typing.get_origin(tp) is Annotated:
        base, metadata = typing.get_args(tp)[0], tp.__metadata__
    meta = next((m for m in metadata if isinstance(m, Meta)), Meta())
    says = next((m.allowed for m in metadata if isinstance(m, Says)), None)
    bounds = _bounds(meta)
    if base is bool:
        return Rule(key, tp, _no_extra, lambda v: (v, "must be true or false"))
    if typing.get_origin(base) is Literal:
        allowed = f"must be one of {', '.join(typing.get_args(base))}"
        return Rule(key, tp, _no_extra, lambda v: (v, allowed))
    if base is int:
        text = _with("must be a whole number", bounds)
        return Rule(key, tp, _no_extra, lambda v: (v, f"must be {bounds}" if _is_int(v) and bounds else text))
    if base is float:
        return _float_rule(key, tp, bounds)
    if base is Decimal:
        return _decimal_rule(key, tp, next((m for m in metadata if isinstance(m, Money)), Money()))
    if base is str:
        return Rule(key, tp, _no_extra, lambda v: (v, _string_allowed(v, meta, says)))
    if typing.get_origin(base) is tuple:
        return _tuple_rule(key, tp, _rule(key, typing.get_args(base)[0]))
    raise TypeError(f"{key}: unsupported setting type {tp!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_int(value)  # a 4,000-digit int is finite, and too large for math.isfinite


def _float_rule(key: str, tp: Any, bounds: str) -> Rule:
    typed = _with("must be a finite number", bounds)

    def extra(value: float) -> str | None:
        # A bound refuses NaN and an upper bound infinity; a setting with no upper bound needs this.
        return None if math.isfinite(value) else typed

    return Rule(key, tp, extra, lambda v: (v, (f"must be {bounds}" if _is_finite_number(v) else typed)))


def _decimal_rule(key: str, tp: Any, money: Money) -> Rule:
    bounds = _bounds(money)
    typed = _with("must be a number", bounds)

    def extra(value: Decimal) -> str | None:
        if not value.is_finite():
            return _with("must be a finite number", bounds)
        if not (
            (money.gt is None or value > money.gt) and (money.ge is None or value >= money.ge) and value <= money.le
        ):
            return f"must be {bounds}"
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int) and exponent < -MONEY_PLACES:
            return f"must have at most {MONEY_PLACES} decimal places"
        return None

    return Rule(key, tp, extra, lambda v: (v, typed))


def _string_allowed(value: Any, meta: Meta, says: str | None) -> str:
    if not isinstance(value, str):
        return "must be a string"
    if meta.min_length and len(value) < meta.min_length:
        return "must not be empty"
    if meta.max_length is not None and len(value) > meta.max_length:
        return f"must be at most {meta.max_length} characters"
    return says or "must be a string"


def _tuple_rule(key: str, tp: Any, item: Rule) -> Rule:
    listed = "must be a list of non-empty strings"

    def extra(values: tuple[Any, ...]) -> str | None:
        return "must not repeat an entry" if len(set(values)) != len(values) else None

    def explain(value: Any) -> tuple[Any, str]:
        if not isinstance(value, list | tuple):
            return value, listed
        if not value:
            return value, "must not be empty"
        for entry in value:
            try:
                item.convert(entry)
            except Refused as refused:
                allowed = refused.problem.allowed
                if allowed.startswith("must be one of"):
                    return value, f"each {allowed}"
                if allowed.startswith("each"):
                    return entry, allowed  # name the one entry that is wrong
                return value, listed
        return value, listed

    return Rule(key, tp, extra, explain)


def section_rules(name: str, cls: type[msgspec.Struct]) -> SectionRules:
    """The rules of every setting of a section, from its annotated field types."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return SectionRules(name, cls, {f: _rule(f"{name}.{f}", hints[f]) for f in cls.__struct_fields__})
