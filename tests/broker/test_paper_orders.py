"""The paper venue's order arithmetic gives what the plainer spelling of it gives, to the last digit."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, strategies as st

from guard.broker.paper_orders import _six_places


@given(st.one_of(st.floats(min_value=0, max_value=1e9), st.integers(0, 2**20).map(lambda k: k / 2**13)))
def test_six_places_is_the_decimal_of_the_float_rounded_to_six_places(value: float) -> None:
    """Exact binary halves (k / 2**13) are the ties both must break alike."""
    assert _six_places(value) == D(str(round(value, 6)))
