"""MarketSpec's rounding: the on-grid shortcut gives the very Decimal the formula gives, exponent and all."""

from __future__ import annotations

import random
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation

import pytest

from guard.domain import ONE, MarketKind, MarketSpec

STEPS = ["0.1", "0.001", "0.05", "0.25", "1", "5", "1E+1", "0.00000001", "2.5E-3", "0.10"]


def _spec(tick: str, step: str) -> MarketSpec:
    return MarketSpec(
        symbol="X/USDT",
        base="X",
        quote="USDT",
        kind=MarketKind.LINEAR,
        tick_size=Decimal(tick),
        step_size=Decimal(step),
        min_qty=Decimal(step),
        min_notional=Decimal(5),
        maker_fee=Decimal("0.0002"),
        taker_fee=Decimal("0.0005"),
        max_leverage=Decimal(20),
    )


def _formula(value: Decimal, step: Decimal, rounding: str) -> Decimal | type[InvalidOperation]:
    try:
        return (value / step).quantize(ONE, rounding=rounding) * step
    except InvalidOperation:
        return InvalidOperation


def _rounded(round_: object, value: Decimal) -> Decimal | type[InvalidOperation]:
    try:
        return round_(value)  # type: ignore[operator, no-any-return]
    except InvalidOperation:
        return InvalidOperation


def _times(step: Decimal, n: int) -> Decimal:
    """`step * n` exactly, however many digits it takes."""
    t = step.as_tuple()
    assert isinstance(t.exponent, int)
    return Decimal(f"{int(''.join(map(str, t.digits))) * n}E{t.exponent}")


def _values(step: Decimal, rng: random.Random) -> list[Decimal]:
    """On the grid (in the step's exponent and others), off it, signed zeros, and past 28 digits."""
    values = [Decimal("0"), Decimal("-0"), step * 0, -(step * 0), step, -step, Decimal("NaN"), Decimal("Infinity")]
    for _ in range(400):
        n = rng.randint(-(10 ** rng.randint(0, 31)), 10 ** rng.randint(0, 31))
        on = step * n
        exact = _times(step, n)  # not rounded to the context's 28 digits, as a Decimal read from text is not
        values += [on, exact, on.normalize(), on + step / 3, Decimal(str(float(on) * 1.0001)), (on * 10).scaleb(-1)]
    return values


@pytest.mark.parametrize("step", STEPS)
def test_rounding_on_and_off_the_grid_is_the_formulas_decimal_exponent_and_all(step: str) -> None:
    spec = _spec(step, step)
    rng = random.Random(step)
    for value in _values(Decimal(step), rng):
        for got, want in (
            (_rounded(spec.round_price, value), _formula(value, spec.tick_size, ROUND_HALF_EVEN)),
            (_rounded(spec.round_qty, value), _formula(value, spec.step_size, ROUND_DOWN)),
        ):
            if want is InvalidOperation or (isinstance(want, Decimal) and want.is_nan()):
                assert got is InvalidOperation or (isinstance(got, Decimal) and got.is_nan()), value
                continue
            assert isinstance(got, Decimal) and isinstance(want, Decimal)
            assert got.as_tuple() == want.as_tuple(), value
            assert str(got) == str(want), value
