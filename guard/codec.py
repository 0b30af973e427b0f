"""JSON for every value that crosses a boundary (journal rows, API frames), by msgspec.

The types say what is allowed (`guard.domain`, `guard.events` and `guard.api.protocol` are frozen
`msgspec.Struct`s that refuse unknown fields), and msgspec checks a message against its type while
it parses it. This module holds the encoder, one cached decoder per type, and the translation of
msgspec's errors into guard's `DecodeError`, which names the path and the reason:
`Approve.version: expected an integer, got a string`.
"""

from __future__ import annotations

import functools
import json
import re
import types
import typing
from enum import Enum
from typing import Any, TypeVar

import msgspec

from guard.errors import DecodeError

T = TypeVar("T")

_ENCODER = msgspec.json.Encoder()
"""Decimals as strings (their exact digits), enums by value, fields in declaration order."""


encode: typing.Callable[[Any], bytes] = _ENCODER.encode
"""A value as compact JSON bytes: the journal's payloads and the API's frames. The encoder's own method, not
a function that calls it: the journal encodes every event, and a wrapper was 6% of the encoding's time."""


def to_plain(value: Any) -> Any:
    """A value's fields as plain Python data (dicts, tuples, strings, numbers; Decimals as strings, enums as
    values). The tag of a tagged struct (an event's "type") is the encoding of its class, not a field: left out."""
    plain = msgspec.to_builtins(value)
    if isinstance(value, msgspec.Struct):
        tag_field = value.__struct_config__.tag_field
        if tag_field is not None:
            del plain[tag_field]
    return plain


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces, no NaN), for hashing an identity such as the config's.

    Not for the hot path (`encode` is several times faster). The text is the one the hand-written
    codec produced before msgspec, so identities hashed then keep their values.
    """
    return _CANONICAL.encode(to_plain(value))


@functools.cache
def decoder(tp: Any) -> msgspec.json.Decoder[Any]:
    """The msgspec decoder for a type, built once."""
    return msgspec.json.Decoder(tp)


def decode(tp: type[T], data: bytes | str, root: str = "") -> T:
    """Parse JSON text into a value of type `tp`, or raise DecodeError naming the path and the reason.

    Args:
        root: how a path in an error starts (default: the type's name), e.g. "event 12 (OrderFilled)"
            gives "event 12 (OrderFilled).fill.qty: not a decimal number".
    """
    try:
        return typing.cast(T, decoder(typing.cast(Any, tp)).decode(data))
    except (msgspec.DecodeError, RecursionError) as e:
        raise translate(e, tp, root) from None


def convert(tp: type[T], data: Any, root: str = "") -> T:
    """Build a value of type `tp` from plain data that is already parsed, as `decode` does from text."""
    try:
        return msgspec.convert(data, tp)
    except (msgspec.DecodeError, RecursionError) as e:
        raise translate(e, tp, root) from None


# --- msgspec's errors in guard's words -------------------------------------------------

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_KINDS = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
    "decimal": "a decimal number",
}
_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`"), "expected {want}, got {got}"),
    (re.compile(r"Expected `str` of length <= (?P<n>\d+)"), "longer than the {n} characters allowed"),
    (re.compile(r"Expected `str` of length >= (?P<n>\d+)"), "shorter than the {n} characters needed"),
    (re.compile(r"Expected `\w+` >= (?P<n>\S+)"), "must be at least {n}"),
    (re.compile(r"Expected `\w+` <= (?P<n>\S+)"), "must be at most {n}"),
    (re.compile(r"Expected `\w+` > (?P<n>\S+)"), "must be more than {n}"),
    (re.compile(r"Expected `\w+` < (?P<n>\S+)"), "must be less than {n}"),
    (re.compile(r"Expected `array` of length (?P<n>\d+).*"), "expected a list of {n} items"),
    (re.compile(r"Object missing required field `(?P<field>[^`]+)`"), "missing field '{field}'"),
    (re.compile(r"Object contains unknown field `(?P<field>[^`]+)`"), "unknown field '{field}'{allowed_fields}"),
    (re.compile(r"Invalid enum value (?P<value>.+)"), "{value} is not one of {allowed_values}"),
    (re.compile(r"Invalid value (?P<value>.+)"), "unknown type {value}"),
    (re.compile(r"Invalid decimal string"), "not a decimal number"),
    (re.compile(r"Number out of range"), "the number is out of range"),
    (re.compile(r"Integer value out of range"), "the integer is out of range"),
    (re.compile(r"Input data was truncated"), "not JSON: the text ends too early"),
    (re.compile(r"JSON is malformed: (?P<why>.+)"), "not JSON: {why}"),
    (re.compile(r"Invalid UTF-8 encoded string"), "not UTF-8 text"),
)


def translate(error: Exception, tp: Any, root: str = "") -> DecodeError:
    """msgspec's error as guard's DecodeError: "<root><path>: <reason>", the root being the type's name."""
    where = root or getattr(tp, "__name__", "value")
    if isinstance(error, RecursionError):
        return DecodeError(f"{where}: nested too deeply")
    text = str(error)
    path = ""
    at = _AT.search(text)
    if at:
        path, text = at["path"], text[: at.start()]
    return DecodeError(f"{where}{path}: {_reason(text, tp, path)}")


def _reason(text: str, tp: Any, path: str) -> str:
    for pattern, words in _REASONS:
        m = pattern.fullmatch(text)
        if m is None:
            continue
        found = m.groupdict()
        if "want" in found:
            found["want"] = " or ".join(_KINDS.get(w, w) for w in found["want"].split(" | "))
            found["got"] = _KINDS.get(found["got"], found["got"])
            if found["got"] == "a boolean":
                found["got"] = "true or false"
        if "{allowed_fields}" in words:
            names = _field_names(_at_path(tp, path))
            found["allowed_fields"] = f"; allowed: {', '.join(sorted(names))}" if names else ""
        if "{allowed_values}" in words:
            at = _at_path(tp, path)
            if isinstance(at, type) and issubclass(at, Enum):
                found["allowed_values"] = ", ".join(str(m.value) for m in at)
            else:
                return f"{found['value']} is not allowed"
        return words.format(**found)
    # Our own checks (a struct's __post_init__) speak guard's language already.
    return text[:1].lower() + text[1:] if text else "does not fit"


def _at_path(tp: Any, path: str) -> Any:
    """The type found by following a msgspec path (`.field`, `[3]`, `.key`) through `tp`, or None."""
    for name, index in re.findall(r"\.(\w+)|(\[\d+\])", path):
        tp = _optional_member(tp)
        if name and isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            fields = {f.name: f.type for f in msgspec.structs.fields(tp)}
            tp = fields.get(name)
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif index and typing.get_origin(tp) is tuple:
            args = typing.get_args(tp)
            tp = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        else:
            return None
    return _optional_member(tp)


def _optional_member(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        return members[0] if len(members) == 1 else tp
    return tp


def _field_names(tp: Any) -> tuple[str, ...]:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return tuple(f.encode_name for f in msgspec.structs.fields(tp))
    return ()
