"""The codec turns every event into canonical JSON and back, and refuses what does not fit."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from guard import codec
from guard.domain import OrderPurpose, OrderRequest, OrderType, OverrideEdits, Side
from guard.errors import DecodeError
from guard.events import EVENT_TYPES, OrderSubmitted


def _order() -> OrderRequest:
    return OrderRequest("c1", "BTC/USDT:USDT", Side.BUY, Decimal("0.010"), OrderType.MARKET, OrderPurpose.ENTRY)


def test_codec_round_trip_keeps_decimals_exact() -> None:
    """Decimals survive as strings, with their exact digits."""
    event = OrderSubmitted(1, _order())
    text = codec.dumps(event)
    assert '"qty":"0.010"' in text
    assert codec.from_plain(OrderSubmitted, json.loads(text)) == event


def test_codec_dumps_is_canonical() -> None:
    """The same event always gives the same text (the journal hashes it)."""
    assert codec.dumps(OrderSubmitted(1, _order())) == codec.dumps(OrderSubmitted(1, _order()))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"at": 1}, "missing field 'request'"),
        ({"at": "1", "request": {}}, "OrderSubmitted.at: expected an integer"),
        ({"at": 1, "request": {}, "extra": 1}, "unknown field 'extra'"),
    ],
)
def test_codec_from_plain_bad_shape_names_the_path(data: dict, message: str) -> None:
    """A malformed object is refused with the path of the first thing that does not fit."""
    with pytest.raises(DecodeError, match=message):
        codec.from_plain(OrderSubmitted, data)


def test_codec_from_plain_rejects_nan_and_bad_enums() -> None:
    """Non-finite numbers and unknown enum values never decode."""
    plain = codec.to_plain(_order())
    with pytest.raises(DecodeError, match="finite"):
        codec.from_plain(OrderRequest, {**plain, "qty": "NaN"})
    with pytest.raises(DecodeError, match="is not one of buy, sell"):
        codec.from_plain(OrderRequest, {**plain, "side": "hold"})


def test_codec_optional_fields_accept_null() -> None:
    """Optional fields decode from null and from a value."""
    assert codec.from_plain(OverrideEdits, {"qty": None, "leverage": "2"}).leverage == Decimal(2)


def test_codec_every_event_type_is_decodable_by_name() -> None:
    """Every event class is registered under its own name for the journal."""
    assert all(name == cls.__name__ for name, cls in EVENT_TYPES.items())
    assert "DecisionRecorded" in EVENT_TYPES and "KillCompleted" in EVENT_TYPES


_ODD_VALUES = (None, True, 0, -1, 1.5, float("inf"), "x", "NaN", "1e3", [], [1], {}, {"type": "Nope"})


def _mutations(plain: dict) -> list[dict]:
    """The object with a field added, and, at every depth, each field dropped or replaced by each odd value."""
    out = [{**plain, "surplus": 1}]
    for name, value in plain.items():
        out.append({k: v for k, v in plain.items() if k != name})
        out += [{**plain, name: odd} for odd in _ODD_VALUES]
        if isinstance(value, dict):
            out += [{**plain, name: inner} for inner in _mutations(value)]
    return out


def _outcome(decode: object) -> tuple[str, object]:
    try:
        return "ok", decode()  # type: ignore[operator]
    except Exception:
        return "refused", None


async def test_codec_fast_path_accepts_and_builds_exactly_what_the_checking_walk_does(tmp_path) -> None:
    """Every event of a real session, and thousands of damaged copies: the compiled decoder and the
    field-by-field walk agree on what decodes and on the value built (the walk only explains refusals)."""
    from tests.builders import close, make_desk, request

    desk = await make_desk(tmp_path / "journal.db")
    queued = await desk.propose(request(stop="97000", take_profit="104000"))
    assert queued.proposal is not None
    await desk.approve(queued.proposal.id, "alice", reason="fine")
    await desk.kill("alice", "drill")
    close(desk)
    events = desk.journal.events()
    assert len({type(e) for e in events}) >= 8
    compared = 0
    for event in events:
        cls = type(event)
        plain = codec.to_plain(event)
        assert codec._decoder(cls)(plain) == event
        for data in _mutations(plain):
            fast = _outcome(lambda cls=cls, data=data: codec._decoder(cls)(data))
            walk = _outcome(lambda cls=cls, data=data: codec._decode(cls, data, cls.__name__))
            assert fast == walk, (cls.__name__, data)
            compared += 1
    assert compared > 1_000
