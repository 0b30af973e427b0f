"""A charting alert's JSON, read as a proposal: tolerant of how alerts are written, strict about what they say.

`POST /v1/sources/NAME/proposals` takes one JSON object such as a TradingView alert can be set to send:

    {"symbol": "BTC/USDT:USDT", "side": "buy", "notional": 500, "leverage": 3, "stop": 61000, "why": "breakout"}

Tolerant: numbers as JSON numbers or as strings ("500"); the side as buy/sell or long/short in any case; a
symbol as guard names it or as a chart does ("BTCUSDT", "BTCUSDT.P", "BINANCE:BTCUSDT.P"); "why" or "reason";
"stop_loss"/"sl" for "stop", "tp" for "take_profit", "quantity" for "qty". Strict: any other key is refused
by name (a misspelt "levrage" must not silently become 1x), a value that is not a number (an alert
placeholder left as "{{close}}") is refused naming its field, and everything then passes the same bounds as
any `Propose` (exactly one size, finite positive numbers, a confidence at most 1).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from guard.api.credentials import Identity, Scope
from guard.api.protocol import PROTOCOL_VERSION, Command, Propose, Reply, decode_command
from guard.approval.desk import ApprovalDesk
from guard.config import is_loopback
from guard.errors import DecodeError

Answer = Callable[[Command, Identity], Awaitable[tuple[Reply, bool, "asyncio.Future[None]"]]]
"""Runs a command as the server runs any: its reply, whether it failed by guard's fault, and the future to
resolve once the response is on its way."""

ALIASES = {
    "symbol": "symbol",
    "ticker": "symbol",
    "side": "side",
    "action": "side",
    "qty": "qty",
    "quantity": "qty",
    "notional": "notional",
    "equity_fraction": "equity_fraction",
    "leverage": "leverage",
    "stop": "stop",
    "stop_loss": "stop",
    "sl": "stop",
    "take_profit": "take_profit",
    "tp": "take_profit",
    "limit_price": "limit_price",
    "confidence": "confidence",
    "why": "reason",
    "reason": "reason",
    "id": "id",
}
"""The keys an alert may use, and the `Propose` field each one fills."""
NUMBERS = frozenset(
    {"qty", "notional", "equity_fraction", "leverage", "stop", "take_profit", "limit_price", "confidence"}
)
SIDES = {"buy": "buy", "long": "buy", "sell": "sell", "short": "sell"}
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


async def post_alert(request: web.Request, identity: Identity, desk: ApprovalDesk, answer: Answer) -> web.Response:
    """Answer `POST /v1/sources/NAME/proposals`: 202 with the proposal id once it is queued; 400 with what to fix in
    the JSON; 403 for anyone but NAME's own token, or from off the machine; 422 with the reason guard refused it."""
    name = request.match_info["name"]
    if identity.scope is not Scope.SOURCE or identity.name != name:
        why = f"this route takes proposals from the source {name!r} with its own token"
        await desk.refuse(identity.name or "shared", f"POST {request.path[:100]}", why)
        return web.json_response({"error": why}, status=403)
    if request.remote and not is_loopback(request.remote):
        return web.json_response({"error": "webhooks are taken on loopback only"}, status=403)
    try:
        command = read_alert(await request.read(), desk.specs)
    except DecodeError as e:
        return web.json_response({"error": str(e)}, status=400)
    reply, failed, answered = await answer(command, identity)
    if failed:
        response = web.json_response({"error": reply.reason}, status=500)
    elif not reply.ok:
        response = web.json_response({"error": reply.reason, "id": command.id}, status=422)
    else:
        response = web.json_response({**reply.data, "id": command.id}, status=202)
    answered.set_result(None)  # the response is written as the handler returns
    return response


def read_alert(body: bytes, symbols: Iterable[str]) -> Propose:
    """The `Propose` an alert's JSON asks for.

    Raises:
        DecodeError: naming what to fix: not a JSON object, an unknown key, a key given twice under two names,
            a value that is not a number, an unknown side or symbol, or what `Propose` itself refuses.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise DecodeError(f"the body must be one JSON object: {e}") from None
    if not isinstance(data, dict):
        raise DecodeError('the body must be one JSON object, like {"symbol": ..., "side": "buy", "notional": 500}')
    fields: dict[str, Any] = {}
    for key, value in data.items():
        field = ALIASES.get(str(key).lower())
        if field is None:
            raise DecodeError(f"unknown key {key!r}: the keys are {', '.join(sorted(ALIASES))}")
        if field in fields:
            raise DecodeError(f"{key!r} gives {field} a second time: give it once")
        fields[field] = _value(field, key, value)
    for required in ("symbol", "side"):
        if required not in fields:
            raise DecodeError(f"{required!r} is missing")
    fields["symbol"] = _symbol(str(fields["symbol"]), symbols)
    frame = {"v": PROTOCOL_VERSION, "type": "Propose", "id": str(fields.pop("id", "") or uuid.uuid4().hex), **fields}
    command = decode_command(json.dumps(frame))
    assert isinstance(command, Propose)
    return command


def _value(field: str, key: str, value: Any) -> Any:
    if field in NUMBERS:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise DecodeError(f"{key}: expected a number (or a number in a string), got {json.dumps(value)[:40]}")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise DecodeError(
                f"{key}: expected a number, got {str(value)[:40]!r} (an alert placeholder left unfilled?)"
            ) from None
        return str(number)
    if not isinstance(value, str):
        raise DecodeError(f"{key}: expected text, got {json.dumps(value)[:40]}")
    if field == "side":
        side = SIDES.get(value.strip().lower())
        if side is None:
            raise DecodeError(f"{key}: {value[:40]!r} is not a side: buy or sell (long or short)")
        return side
    return value


def _symbol(text: str, symbols: Iterable[str]) -> str:
    """A market guard trades, from its own name or a chart's ("BINANCE:BTCUSDT.P" is BTC/USDT:USDT)."""
    known = list(symbols)
    if text in known:
        return text
    bare = text.upper().rsplit(":", 1)[-1] if "/" not in text else text.upper()
    for suffix in (".P", "PERP"):
        bare = bare.removesuffix(suffix)
    wanted = _NOT_ALNUM.sub("", bare)
    for symbol in known:
        pair = symbol.split(":", 1)[0]
        if _NOT_ALNUM.sub("", pair.upper()) == wanted:
            return symbol
    raise DecodeError(f"symbol {text[:40]!r} is not traded here; known: {', '.join(known)}")
