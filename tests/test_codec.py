"""The codec turns every event into JSON and back, and refuses what does not fit, naming where and why."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from guard import codec
from guard.api.protocol import Reply, decode_command
from guard.domain import OrderPurpose, OrderRequest, OrderType, OverrideEdits, Side
from guard.errors import DecodeError
from guard.events import EVENT_TYPES, OrderSubmitted, ProposalQueued


def _order() -> OrderRequest:
    return OrderRequest("c1", "BTC/USDT:USDT", Side.BUY, Decimal("0.010"), OrderType.MARKET, OrderPurpose.ENTRY)


def test_codec_round_trip_keeps_decimals_exact() -> None:
    """Decimals survive as strings, with their exact digits."""
    event = OrderSubmitted(1, _order())
    text = codec.encode(event)
    assert b'"qty":"0.010"' in text
    assert codec.decode(OrderSubmitted, text) == event


def test_codec_encode_is_deterministic() -> None:
    """The same event always gives the same text (the journal hashes it), and so does the canonical form."""
    assert codec.encode(OrderSubmitted(1, _order())) == codec.encode(OrderSubmitted(1, _order()))
    assert codec.dumps(OrderSubmitted(1, _order())) == codec.dumps(OrderSubmitted(1, _order()))


def test_codec_dumps_is_the_canonical_text_of_before() -> None:
    """`dumps` sorts keys, leaves out an event's tag and keeps Decimals as strings: identities hashed from it
    (the config's) are the ones the hand-written codec gave."""
    text = codec.dumps(OrderSubmitted(1, _order()))
    assert text.startswith('{"at":1,"request":{"client_order_id":"c1",') and '"type"' not in text
    assert json.loads(text)["request"]["qty"] == "0.010"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"at": 1}, "OrderSubmitted: missing field 'request'"),
        ({"at": "1", "request": {}}, "OrderSubmitted.at: expected an integer"),
        ({"at": 1, "extra": 1, "request": {}}, "unknown field 'extra'; allowed: at, request"),
        ({"at": 1, "request": {**codec.to_plain(_order()), "qty": "x"}}, r"OrderSubmitted.request.qty: not a decimal"),
    ],
)
def test_codec_bad_shape_names_the_path(data: dict, message: str) -> None:
    """A malformed object is refused with the path of the first thing that does not fit."""
    with pytest.raises(DecodeError, match=message):
        codec.convert(OrderSubmitted, data)
    with pytest.raises(DecodeError, match=message):
        codec.decode(OrderSubmitted, json.dumps(data))


def test_codec_rejects_bad_enums_and_the_wire_rejects_non_finite_numbers() -> None:
    """Unknown enum values never decode (the error lists what is allowed); a non-finite number from a client
    never gets past the protocol."""
    plain = codec.to_plain(_order())
    with pytest.raises(DecodeError, match=r"OrderRequest\.side: 'hold' is not one of buy, sell"):
        codec.convert(OrderRequest, {**plain, "side": "hold"})
    for bad in ('"NaN"', '"sNaN"', '"Infinity"', '"-Infinity"'):
        frame = f'{{"v":2,"type":"ClosePosition","id":"c","symbol":"BTC/USDT:USDT","qty":{bad}}}'
        with pytest.raises(DecodeError, match=r"ClosePosition\.qty: expected a finite number"):
            decode_command(frame)


def test_codec_optional_fields_accept_null() -> None:
    """Optional fields decode from null and from a value."""
    assert codec.convert(OverrideEdits, {"qty": None, "leverage": "2"}).leverage == Decimal(2)


def test_codec_every_event_type_is_decodable_by_name() -> None:
    """Every event class is registered under its own name for the journal, and tagged with it."""
    assert all(name == cls.__name__ for name, cls in EVENT_TYPES.items())
    assert "DecisionRecorded" in EVENT_TYPES and "KillCompleted" in EVENT_TYPES
    event = OrderSubmitted(1, _order())
    assert json.loads(codec.encode(event))["type"] == "OrderSubmitted"


def test_codec_deep_nesting_is_refused_not_a_crash() -> None:
    """Nesting where the type has none is refused at its first bracket; nesting deeper than the stack where a
    type takes anything (a reply's data) is a DecodeError like any other bad input, not a RecursionError."""
    deep = "[" * 50_000 + "]" * 50_000
    with pytest.raises(DecodeError, match=r"OrderSubmitted\.request: expected an object, got a list"):
        codec.decode(OrderSubmitted, '{"at":1,"request":' + deep + "}")
    with pytest.raises(DecodeError, match="Reply: nested too deeply"):
        codec.decode(Reply, '{"id":"r","ok":true,"data":{"x":' + deep + "}}")


_ODD_VALUES = (None, True, 0, -1, 1.5, "x", "NaN", "1e3", [], [1], {}, {"type": "Nope"}, "\u00e9" * 3)


def _mutations(plain: dict) -> list[dict]:
    """The object with a field added, and, at every depth, each field dropped or replaced by each odd value."""
    out = [{**plain, "surplus": 1}]
    for name, value in plain.items():
        out.append({k: v for k, v in plain.items() if k != name})
        out += [{**plain, name: odd} for odd in _ODD_VALUES]
        if isinstance(value, dict):
            out += [{**plain, name: inner} for inner in _mutations(value)]
    return out


async def test_codec_decoding_a_damaged_event_builds_it_exactly_or_names_the_path(tmp_path) -> None:
    """Every event of a real session decodes to itself; thousands of damaged copies either decode (an odd
    value that still fits the type) or raise DecodeError naming the event type, and nothing else ever."""
    from tests.builders import close, make_desk, request

    desk = await make_desk(tmp_path / "journal.db")
    queued = await desk.propose(request(stop="97000", take_profit="104000"))
    assert queued.proposal is not None
    await desk.approve(queued.proposal.id, "alice", reason="fine")
    await desk.kill("alice", "drill")
    close(desk)
    events = desk.journal.events()
    assert len({type(e) for e in events}) >= 8 and any(isinstance(e, ProposalQueued) for e in events)
    refused = 0
    for event in events:
        cls = type(event)
        plain = codec.to_plain(event)
        assert codec.decode(cls, codec.encode(event)) == event
        assert codec.convert(cls, plain) == event
        for data in _mutations(plain):
            try:
                codec.decode(cls, json.dumps(data))
            except DecodeError as e:
                assert str(e).startswith(cls.__name__), str(e)
                refused += 1
    assert refused > 1_000
