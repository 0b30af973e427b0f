"""The wire protocol: typed, versioned frames; anything else is refused with a reason."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from guard.api.protocol import (
    MAX_FRAME_BYTES,
    Approve,
    Override,
    Reply,
    decode_command,
    decode_message,
    encode,
)
from guard.domain import OverrideEdits
from guard.errors import DecodeError


def test_command_round_trip_keeps_types() -> None:
    """A command decodes to exactly what was encoded, decimals included."""
    command = Override("c1", "P000001", 2, OverrideEdits(qty=Decimal("0.010")), "smaller", confirm_risk_increase=True)
    assert decode_command(encode(command)) == command


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"type": "Approve", "id": "x"}', "protocol version None is not supported"),
        ('{"v": 1, "type": "Approve"}', "protocol version 1 is not supported"),
        ('{"v": 2, "type": "Sell"}', "unknown message type 'Sell'"),
        ('{"v": 2, "type": "Approve", "id": "x", "proposal_id": "P1"}', "missing field 'version'"),
        ('{"v": 2, "type": "Approve", "id": "x", "proposal_id": "P1", "version": "2"}', "expected an integer"),
        ('{"v": 2, "type": "Reply", "id": "x", "ok": true}', "unknown message type 'Reply'"),
    ],
)
def test_decode_command_refuses_malformed_frames(frame: str, message: str) -> None:
    """Every malformed frame is refused with a reason that names the problem."""
    with pytest.raises(DecodeError, match=message):
        decode_command(frame)


def test_decode_command_refuses_oversized_frames() -> None:
    """Frames beyond the size limit are refused before they are parsed."""
    big = json.dumps({"v": 2, "type": "Kill", "id": "k", "reason": "x" * MAX_FRAME_BYTES})
    with pytest.raises(DecodeError, match="larger than"):
        decode_command(big)


def test_decode_message_reads_replies() -> None:
    """Clients decode the daemon's replies."""
    assert decode_message(encode(Reply("a", True, "ok", {"status": "FILLED"}))) == Reply(
        "a", True, "ok", {"status": "FILLED"}
    )


def test_commands_cannot_be_sent_as_messages() -> None:
    """Commands and messages are separate vocabularies."""
    with pytest.raises(DecodeError):
        decode_message(encode(Approve("a", "P1", 1)))
