"""Vault's (Go's) decoding of integers and durations, with Go's 64-bit limits.

Vault decodes request bodies with ``json.Number`` and parses them with
``strconv.ParseInt``, ``time.ParseDuration`` and ``parseutil.ParseDurationSecond``,
so every accepted value fits an int64 (durations: int64 nanoseconds). Python's
integers have no limit: without these checks a value Vault refuses (``10**30``,
``"999999999999h"``) would be accepted, stored, and then fail later (a 500 when
a deletion time or a response is serialized). Parsing here refuses exactly what
Vault refuses, with Go's error text, so nothing accepted can overflow later.

A JSON number reaches Vault as its literal text: ``1.0`` and ``1e3`` are not
integers there (``ParseInt`` fails) and not durations either (no unit). Python's
decoder has turned them into floats, so a float is refused wherever Go would.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from strongroom.config import MAX_DURATION_SECONDS  # Go's time.Duration, in seconds

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
SECOND_NS = 10**9
DAY_NS = 24 * 3600 * SECOND_NS

_UNITS_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6,
             "s": SECOND_NS, "m": 60 * SECOND_NS, "h": 3600 * SECOND_NS}
_BASE10 = re.compile(r"[+-]?[0-9]+")
# strconv.ParseInt(s, 0, 64): base prefixes, a leading 0 means octal, and
# underscores only between digits or after a prefix.
_BASE0 = re.compile(
    r"(?P<sign>[+-]?)(?:0[xX](?P<hex>(?:_?[0-9a-fA-F])+)|0[oO](?P<oct>(?:_?[0-7])+)"
    r"|0[bB](?P<bin>(?:_?[01])+)|0(?P<oct0>(?:_?[0-7])*)|(?P<dec>[1-9](?:_?[0-9])*))")
_OVERFLOW = "multiplication of durations resulted in overflow, one operand may be too large"


class GoParseError(ValueError):
    """A value Vault refuses; ``str()`` is Go's error text."""


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def parse_int_base10(text: str) -> int:
    """strconv.ParseInt(text, 10, 64)."""
    if not _BASE10.fullmatch(text):
        raise GoParseError(f"strconv.ParseInt: parsing {_quote(text)}: invalid syntax")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise GoParseError(f"strconv.ParseInt: parsing {_quote(text)}: value out of range")
    return value


def parse_int_base0(text: str) -> int:
    """strconv.ParseInt(text, 0, 64), as mapstructure's weak decoding of a string."""
    match = _BASE0.fullmatch(text)
    if match is None:
        raise GoParseError("strconv.ParseInt: invalid syntax")
    for group, base in (("hex", 16), ("oct", 8), ("bin", 2), ("oct0", 8), ("dec", 10)):
        digits = match.group(group)
        if digits is not None:
            value = int(digits.replace("_", "") or "0", base)
            break
    if match.group("sign") == "-":
        value = -value
    if not INT64_MIN <= value <= INT64_MAX:
        raise GoParseError("strconv.ParseInt: value out of range")
    return value


def weak_int(value: Any) -> int:
    """mapstructure.WeakDecode into a Go int (64-bit) of one decoded JSON value.

    Raises:
        GoParseError: With Go's reason; callers name the field.
    """
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        # json.Number.Int64(): base 10, int64 range.
        if not INT64_MIN <= value <= INT64_MAX:
            raise GoParseError("cannot parse value as 'int': strconv.ParseInt: value out of range")
        return value
    if isinstance(value, float):
        # The JSON decoder turns integers past 64 bits into floats: Go saw digits.
        reason = ("value out of range" if value.is_integer() and abs(value) >= 2**63
                  else "invalid syntax")
        raise GoParseError(f"cannot parse value as 'int': strconv.ParseInt: {reason}")
    if isinstance(value, str):
        try:
            return parse_int_base0(value or "0")
        except GoParseError as exc:
            raise GoParseError(f"cannot parse value as 'int': {exc}") from None
    kind = "[]interface {}" if isinstance(value, list) else (
        "map[string]interface {}" if isinstance(value, dict) else type(value).__name__)
    raise GoParseError(f"expected type 'int', got unconvertible type '{kind}'")


def weak_string(value: Any) -> str:
    """mapstructure.WeakDecode into a Go string (numbers as their JSON text)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    kind = "[]interface {}" if isinstance(value, list) else "map[string]interface {}"
    raise GoParseError(f"expected type 'string', got unconvertible type '{kind}'")


def _float_text(value: float) -> str:
    # The literal is gone. An integral float past int64 was a long run of digits
    # (the JSON decoder's fallback); anything else had a '.' or an exponent.
    if not math.isfinite(value):
        return "0"
    if value.is_integer() and abs(value) >= 2**63:
        return str(int(value))
    return repr(value)


def _leading_int(s: str) -> tuple[int, str]:
    """Go's time.leadingInt: the digits at the start of s; overflow past 1<<63 fails."""
    i, x = 0, 0
    while i < len(s) and "0" <= s[i] <= "9":
        x = x * 10 + ord(s[i]) - 48
        if x > 1 << 63:
            raise GoParseError("overflow")
        i += 1
    return x, s[i:]


def _leading_fraction(s: str) -> tuple[int, float, str]:
    """Go's time.leadingFraction: digits after '.', dropping those that would overflow."""
    i, x, scale, overflow = 0, 0, 1.0, False
    while i < len(s) and "0" <= s[i] <= "9":
        if not overflow:
            y = x * 10 + ord(s[i]) - 48
            if x > INT64_MAX // 10 or y > 1 << 63:
                overflow = True
            else:
                x, scale = y, scale * 10
        i += 1
    return x, scale, s[i:]


def parse_go_duration(orig: str) -> int:
    """time.ParseDuration: Go's syntax into int64 nanoseconds, refusing overflow."""
    invalid = GoParseError(f"time: invalid duration {_quote(orig)}")
    s, neg = orig, False
    if s[:1] in ("-", "+"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise invalid
    total = 0
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            raise invalid
        before = len(s)
        try:
            whole, s = _leading_int(s)
        except GoParseError:
            raise invalid from None
        pre, post, frac, scale = before != len(s), False, 0, 1.0
        if s[:1] == ".":
            s = s[1:]
            before = len(s)
            frac, scale, s = _leading_fraction(s)
            post = before != len(s)
        if not pre and not post:
            raise invalid
        i = 0
        while i < len(s) and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        if i == 0:
            raise GoParseError(f"time: missing unit in duration {_quote(orig)}")
        name, s = s[:i], s[i:]
        unit = _UNITS_NS.get(name)
        if unit is None:
            raise GoParseError(f"time: unknown unit {_quote(name)} in duration {_quote(orig)}")
        if whole > (1 << 63) // unit:
            raise invalid
        whole *= unit
        if frac > 0:
            whole += int(float(frac) * (float(unit) / scale))
            if whole > 1 << 63:
                raise invalid
        total += whole
        if total > 1 << 63:
            raise invalid
    if neg:
        return -total
    if total > INT64_MAX:
        raise invalid
    return total


def _times(count: int, unit: int) -> int:
    product = count * unit
    if not INT64_MIN <= product <= INT64_MAX:
        raise GoParseError(_OVERFLOW)
    return product


def parse_duration_ns(value: Any) -> int:
    """parseutil.ParseDurationSecond of one decoded JSON value, in nanoseconds.

    Integers are seconds, ``<n>d`` is days, anything else Go's duration syntax;
    ``None`` and ``""`` are zero.

    Raises:
        GoParseError: With Go's text (invalid syntax, unknown unit, overflow).
    """
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise GoParseError("could not parse duration from input")
    text = value if isinstance(value, str) else (
        str(value) if isinstance(value, int) else _float_text(value))
    if text == "":
        return 0
    try:
        return _times(parse_int_base10(text), SECOND_NS)
    except GoParseError as exc:
        if str(exc) == _OVERFLOW:
            raise
    if text.endswith("d"):
        return _times(parse_int_base10(text[:-1]), DAY_NS)
    return parse_go_duration(text)


def duration_seconds(value: Any) -> int:
    """A duration as Vault's TypeDurationSecond returns it: int(d.Seconds()), truncated."""
    ns = parse_duration_ns(value)
    return ns // SECOND_NS if ns >= 0 else -(-ns // SECOND_NS)


def within_duration_range(seconds: int) -> int:
    """``seconds`` if a Go time.Duration can hold it, else a GoParseError (a ValueError).

    For durations parsed by other rules (config.parse_duration) that must still
    fit what Vault accepts, so they can be added to a clock and serialized.
    """
    if not -MAX_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS:
        raise GoParseError(f"duration of {seconds} seconds is longer than the maximum, "
                           f"{MAX_DURATION_SECONDS} seconds (2562047h47m16s)")
    return seconds
