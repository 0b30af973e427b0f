"""Frozen dataclasses to plain JSON values and back, strictly.

One codec for the journal and the control API. Decoding checks every field against the
dataclass's annotations and names the path of the first thing that does not fit, so a bad
message or a damaged journal row gives a clear error instead of a half-built object.
"""

from __future__ import annotations

import dataclasses
import json
import math
import operator
import types
import typing
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import cache
from typing import Any, TypeVar

from guard.errors import DecodeError

T = TypeVar("T")


_SCALARS = frozenset({str, int, float, bool, type(None)})


def to_plain(value: Any) -> Any:
    """Turn a dataclass (or anything inside one) into JSON-ready values."""
    cls = type(value)
    return (_ENCODERS.get(cls) or _encoder(cls))(value)


_ENCODERS: dict[type, typing.Callable[[Any], Any]] = {}
"""One encoder per runtime type, built on first sight: every journaled event and every frame to a console
passes through here, and a generic walk that asks each value what it is cost three times as much."""


def _identity(value: Any) -> Any:
    return value


def _encoder(cls: type) -> typing.Callable[[Any], Any]:
    encode: typing.Callable[[Any], Any]
    if cls in _SCALARS:
        encode = _identity
    elif dataclasses.is_dataclass(cls):
        encode = _dataclass_encoder(tuple(f.name for f in dataclasses.fields(cls)))
    elif cls is Decimal:
        encode = str
    elif issubclass(cls, Enum):
        encode = operator.attrgetter("value")
    elif issubclass(cls, (tuple, list)):
        encode = lambda values: [to_plain(v) for v in values]  # noqa: E731
    elif issubclass(cls, dict):
        encode = lambda mapping: {str(k): to_plain(v) for k, v in mapping.items()}  # noqa: E731
    else:
        encode = _identity
    _ENCODERS[cls] = encode
    return encode


def _dataclass_encoder(names: tuple[str, ...]) -> typing.Callable[[Any], Any]:
    def encode(value: Any) -> dict[str, Any]:
        plain = {}
        for name in names:
            field = getattr(value, name)
            plain[name] = field if type(field) in _SCALARS else to_plain(field)
        return plain

    return encode


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)
"""Built once: `json.dumps` with options builds an encoder per call, an eighth of the encoding time."""


def dumps(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, no NaN. The journal hashes exactly this text."""
    return _CANONICAL.encode(to_plain(value))


def from_plain(tp: type[T], data: Any, path: str = "") -> T:
    """Build a value of type `tp` from plain JSON data, or raise DecodeError naming the path.

    A decoder compiled once per type does the work; it refuses exactly what the checking walk
    below refuses, but without naming anything. Only when it refuses does the walk run again,
    to say where and why: paths are built for errors, not for every field of every message.
    """
    try:
        return typing.cast(T, _decoder(tp)(data))
    except Exception:
        return typing.cast(T, _decode(tp, data, path or getattr(tp, "__name__", "value")))


# --- compiled decoders: the fast path of from_plain ------------------------------------


class _Refused(Exception):
    """The fast path met something the checking walk would refuse (it then says why)."""


def _refuse() -> Any:
    raise _Refused


@cache
def _decoder(tp: Any) -> typing.Callable[[Any], Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _union_decoder(typing.get_args(tp))
    if tp is Any:
        return lambda data: data
    if tp is type(None):
        return lambda data: None if data is None else _refuse()
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0])
            return lambda data: tuple(map(item, data)) if type(data) in (list, tuple) else _refuse()
        items = tuple(map(_decoder, args))
        return lambda data: (
            tuple(d(v) for d, v in zip(items, data, strict=True))
            if type(data) in (list, tuple) and len(data) == len(items)
            else _refuse()
        )
    if origin is dict:
        key, value = map(_decoder, typing.get_args(tp))
        return lambda data: {key(k): value(v) for k, v in data.items()} if type(data) is dict else _refuse()
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_decoder(tp)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp
    if tp is Decimal:
        return _fast_decimal
    if tp is bool:
        return lambda data: data if type(data) is bool else _refuse()
    if tp is int:
        return lambda data: data if type(data) is int else _refuse()
    if tp is float:
        return lambda data: float(data) if type(data) in (int, float) and math.isfinite(data) else _refuse()
    if tp is str:
        return lambda data: data if type(data) is str else _refuse()
    return lambda data: _refuse()


def _union_decoder(args: tuple[Any, ...]) -> typing.Callable[[Any], Any]:
    optional = type(None) in args
    candidates = [a for a in args if a is not type(None)]
    if len(candidates) == 1:
        only = _decoder(candidates[0])
        return (lambda data: None if data is None else only(data)) if optional else only
    by_name = {getattr(c, "__name__", None): _decoder(c) for c in candidates}
    each = [_decoder(c) for c in candidates]

    def decode(data: Any) -> Any:
        if data is None and optional:
            return None
        if type(data) is dict and "type" in data:
            body = {k: v for k, v in data.items() if k != "type"}
            return by_name[data["type"]](body)
        for candidate in each:
            try:
                return candidate(data)
            except Exception:
                continue
        raise _Refused

    return decode


def _dataclass_decoder(cls: type) -> typing.Callable[[Any], Any]:
    hints = _hints(cls)
    names = frozenset(f.name for f in _fields(cls))
    specs = tuple(
        (
            f.name,
            _decoder(hints[f.name]),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in _fields(cls)
    )

    def decode(data: Any) -> Any:
        if type(data) is not dict or not names.issuperset(data):
            raise _Refused
        kwargs = {}
        for name, field_decoder, required in specs:
            if name in data:
                kwargs[name] = field_decoder(data[name])
            elif required:
                raise _Refused
        return cls(**kwargs)

    return decode


def _fast_decimal(data: Any) -> Decimal:
    if type(data) not in (str, int, float):
        raise _Refused
    value = Decimal(str(data))
    if not value.is_finite():
        raise _Refused
    return value


# --- the checking walk: says where and why a value does not fit ---------------------------


@cache
def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(cls)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(tp: Any, data: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _decode_union(typing.get_args(tp), data, path)
    if tp is Any:
        return data
    if tp is type(None):
        if data is not None:
            raise DecodeError(f"{path}: expected null, got {data!r}")
        return None
    if origin is tuple:
        return _decode_tuple(typing.get_args(tp), data, path)
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        if not isinstance(data, dict):
            raise DecodeError(f"{path}: expected an object, got {_kind(data)}")
        return {_decode(key_tp, k, f"{path}.{k}"): _decode(value_tp, v, f"{path}.{k}") for k, v in data.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, data, path)
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(data)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in tp)
            raise DecodeError(f"{path}: {data!r} is not one of {allowed}") from None
    if tp is Decimal:
        return _decode_decimal(data, path)
    if tp is bool:
        if not isinstance(data, bool):
            raise DecodeError(f"{path}: expected true or false, got {_kind(data)}")
        return data
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise DecodeError(f"{path}: expected an integer, got {_kind(data)}")
        return data
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise DecodeError(f"{path}: expected a number, got {_kind(data)}")
        if not math.isfinite(data):
            raise DecodeError(f"{path}: expected a finite number, got {data!r}")
        return float(data)
    if tp is str:
        if not isinstance(data, str):
            raise DecodeError(f"{path}: expected a string, got {_kind(data)}")
        return data
    raise DecodeError(f"{path}: cannot decode type {tp!r}")


def _decode_union(args: tuple[Any, ...], data: Any, path: str) -> Any:
    if data is None and type(None) in args:
        return None
    candidates = [a for a in args if a is not type(None)]
    if len(candidates) == 1:
        return _decode(candidates[0], data, path)
    # A union of dataclasses is tagged with "type" by `tagged()`.
    if isinstance(data, dict) and "type" in data:
        for cand in candidates:
            if getattr(cand, "__name__", None) == data["type"]:
                body = {k: v for k, v in data.items() if k != "type"}
                return _decode(cand, body, path)
        raise DecodeError(f"{path}: unknown type {data['type']!r}")
    errors = []
    for cand in candidates:
        try:
            return _decode(cand, data, path)
        except DecodeError as e:
            errors.append(str(e))
    raise DecodeError(errors[0] if errors else f"{path}: no type fits {data!r}")


def _decode_tuple(args: tuple[Any, ...], data: Any, path: str) -> tuple[Any, ...]:
    if not isinstance(data, (list, tuple)):
        raise DecodeError(f"{path}: expected a list, got {_kind(data)}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_decode(args[0], v, f"{path}[{i}]") for i, v in enumerate(data))
    if len(data) != len(args):
        raise DecodeError(f"{path}: expected {len(args)} items, got {len(data)}")
    return tuple(_decode(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, data, strict=True)))


def _decode_dataclass(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise DecodeError(f"{path}: expected an object, got {_kind(data)}")
    hints = _hints(cls)
    fields = _fields(cls)
    names = {f.name for f in fields}
    unknown = sorted(set(data) - names)
    if unknown:
        raise DecodeError(f"{path}: unknown field {unknown[0]!r}; allowed: {', '.join(sorted(names))}")
    kwargs = {}
    for f in fields:
        if f.name in data:
            kwargs[f.name] = _decode(hints[f.name], data[f.name], f"{path}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise DecodeError(f"{path}: missing field {f.name!r}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise DecodeError(f"{path}: {e}") from e


def _decode_decimal(data: Any, path: str) -> Decimal:
    if isinstance(data, bool) or not isinstance(data, (str, int, float)):
        raise DecodeError(f"{path}: expected a decimal number, got {_kind(data)}")
    try:
        value = Decimal(str(data))
    except InvalidOperation:
        raise DecodeError(f"{path}: {data!r} is not a number") from None
    if not value.is_finite():
        raise DecodeError(f"{path}: expected a finite number, got {data!r}")
    return value


def _kind(data: Any) -> str:
    if data is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(data), f"{type(data).__name__} {data!r}"
    )


def tagged(value: Any) -> dict[str, Any]:
    """Plain form of a dataclass with its class name under "type" (for unions on the wire)."""
    return {"type": type(value).__name__, **to_plain(value)}
