"""The paper venue's per-symbol view of its resting orders is kept, not rebuilt at every price: it must always say
what a scan of the whole book says, and its bisecting `next_level` what `next_level` over the levels says."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings, strategies as st

from guard.broker.paper_market import Resting, RestingBook, next_level
from guard.domain import LIMIT_ORDER, STOP_MARKET_ORDER, TAKE_PROFIT_ORDER, OrderPurpose, OrderRequest, OrderType, Side

SYMBOLS = ("A/USDT", "B/USDT")
PRICES = ("90", "95", "95.0", "96", "97.50", "97.5", "100", "103")
"""Equal prices written differently: which of them a level is matters, as the mark takes it."""


def _order(cid: str, symbol: str, kind: OrderType, side: Side, price: str) -> Resting:
    p = D(price)
    limit, trigger = (p, None) if kind is LIMIT_ORDER else (None, p)
    request = OrderRequest(
        cid, symbol, side, D(1), kind, OrderPurpose.STOP, limit_price=limit, trigger_price=trigger, reduce_only=True
    )
    return Resting(request, D(1))


_orders = st.builds(
    _order,
    st.sampled_from(["o1", "o2", "o3", "o4", "o5"]),
    st.sampled_from(SYMBOLS),
    st.sampled_from([LIMIT_ORDER, STOP_MARKET_ORDER, TAKE_PROFIT_ORDER]),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.sampled_from(PRICES),
)
_steps = st.lists(
    st.one_of(
        st.tuples(st.just("set"), _orders),
        st.tuples(st.just("del"), st.sampled_from(["o1", "o2", "o3", "o4", "o5"])),
        st.tuples(st.just("pop"), st.sampled_from(["o1", "o2", "o3", "o4", "o5"])),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(_steps, st.sampled_from(PRICES), st.sampled_from(PRICES))
def test_each_symbols_view_agrees_with_a_scan_of_the_whole_book(
    steps: list[tuple[str, object]], start: str, end: str
) -> None:
    book = RestingBook()
    for op, arg in steps:
        if op == "set":
            assert isinstance(arg, Resting)
            book[arg.request.client_order_id] = arg
        elif op == "del" and arg in book:
            del book[str(arg)]
        elif op == "pop":
            book.pop(str(arg), None)
        for symbol in SYMBOLS:
            view = book.of(symbol)
            mine = [r.request for r in book.values() if r.request.symbol == symbol]
            assert view.ids == tuple(r.client_order_id for r in mine)
            levels = [r.limit_price if r.order_type is LIMIT_ORDER else r.trigger_price for r in mine]
            assert list(map(str, view.levels)) == list(map(str, sorted(levels)))  # type: ignore[type-var]
            for a, b in ((D(start), D(end)), (D(end), D(start))):
                want, got = next_level(a, b, levels), view.next_level(a, b)
                assert str(got) == str(want)  # the very level, not only an equal one


def test_of_equal_levels_the_view_reaches_the_first_to_rest_either_way() -> None:
    book = RestingBook()
    for cid, price in (("o1", "97.50"), ("o2", "97.5"), ("o3", "95"), ("o4", "95.0")):
        book[cid] = _order(cid, SYMBOLS[0], STOP_MARKET_ORDER, Side.SELL, price)
    view = book.of(SYMBOLS[0])
    assert str(view.next_level(D(100), D(96))) == "97.50"
    assert str(view.next_level(D(90), D(96))) == "95"
    assert str(view.next_level(D(96), D(90))) == "95"
    assert view.next_level(D("97.5"), D(100)) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(_orders, max_size=6), st.sampled_from(PRICES), st.sampled_from(PRICES), st.sampled_from(PRICES))
def test_a_liquidation_price_given_along_is_reached_before_any_order_at_its_price(
    orders: list[Resting], start: str, end: str, liquidation: str
) -> None:
    """The position's liquidation price is one more level, first of equals: what `next_level` over it and the
    orders' levels, in that order, says."""
    book = RestingBook()
    for resting in orders:
        book[resting.request.client_order_id] = resting
    view = book.of(SYMBOLS[0])
    mine = [r.request for r in book.values() if r.request.symbol == SYMBOLS[0]]
    levels = [r.limit_price if r.order_type is LIMIT_ORDER else r.trigger_price for r in mine]
    lp = D(liquidation)
    for a, b in ((D(start), D(end)), (D(end), D(start))):
        want, got = next_level(a, b, [lp, *levels]), view.next_level(a, b, lp)
        assert str(got) == str(want) and (got is lp) == (want is lp)


def test_a_liquidation_price_equal_to_an_orders_level_is_reached_first_either_way() -> None:
    book = RestingBook()
    book["o1"] = _order("o1", SYMBOLS[0], STOP_MARKET_ORDER, Side.SELL, "95.0")
    view = book.of(SYMBOLS[0])
    lp = D("95")
    assert view.next_level(D(100), D(90), lp) is lp
    assert view.next_level(D(90), D(100), lp) is lp
    assert str(view.next_level(D(90), D(100), D(99))) == "95.0"
    assert view.next_level(D(100), D(96), lp) is None
