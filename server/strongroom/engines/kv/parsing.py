"""Vault's (Go's) weak input decoding for the KV fields the framework types do not cover.

Integers accept JSON numbers without a fraction, booleans and Go integer literals
("" is 0); durations accept seconds or Go duration strings; custom metadata
values become strings. Every failure is a 400 naming the field.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from strongroom.errors import BadRequestError

_OCTAL = re.compile(r"[+-]?0[0-7]+")
_DECIMAL = re.compile(r"[+-]?\d+")
_DURATION = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6,
            "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}

MAX_CUSTOM_KEYS = 64
MAX_CUSTOM_KEY_BYTES = 128
MAX_CUSTOM_VALUE_BYTES = 512
_CM_PREFIX = "custom_metadata validation failed"


def _field_error(name: str, expected: str) -> BadRequestError:
    return BadRequestError(f"error converting input for field {name!r}: expected {expected}")


def _int_text(text: str) -> int:
    """strconv.ParseInt(text, 0, 64): prefixes 0x/0o/0b, a leading 0 is octal."""
    if text == "":
        return 0
    if _OCTAL.fullmatch(text):
        return int(text, 8)
    if text.strip() != text:
        raise ValueError(text)
    return int(text, 0)


def go_int(name: str, value: Any) -> int:
    """One integer, decoded as Vault's TypeInt does."""
    try:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            return _int_text(value)
    except ValueError:
        pass
    raise _field_error(name, "int")


def int_list(name: str, value: Any) -> list[int]:
    """Vault's TypeCommaIntSlice: a list, one number, or "1,2,3"."""
    if value is None:
        return []
    if isinstance(value, str):
        return [] if value == "" else [go_int(name, part) for part in value.split(",")]
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if item is None:
            out.append(0)
        elif isinstance(item, (bool, int, str)):
            out.append(go_int(name, item))
        else:
            raise _field_error(name, "a list of integers")
    return out


def duration_seconds(name: str, value: Any, allow_negative: bool = False) -> int:
    """parseutil.ParseDurationSecond: integer seconds, or Go duration text; truncated."""
    try:
        seconds = _parse_duration(value)
    except (ValueError, InvalidOperation):
        raise BadRequestError(
            f"error converting input for field {name!r}: invalid duration {value!r}"
        ) from None
    if seconds < 0 and not allow_negative:
        raise BadRequestError(
            f"error converting input for field {name!r}: cannot provide negative value"
        )
    return seconds


def _parse_duration(value: Any) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if not isinstance(value, str):
        raise ValueError(value)
    text = value
    if text.endswith("d") and _DECIMAL.fullmatch(text[:-1]):
        return int(text[:-1]) * 86400
    if not text.endswith(("s", "m", "h")):
        if not _DECIMAL.fullmatch(text):
            raise ValueError(text)
        return int(text, 10)
    if not _DURATION.fullmatch(text):
        raise ValueError(text)
    total = sum(Decimal(num) * _UNIT_NS[unit] for num, unit in _DURATION_PART.findall(text))
    seconds = int(total) // 10**9
    return -seconds if text.startswith("-") else seconds


def format_duration(seconds: int) -> str:
    """Go's time.Duration.String() for whole seconds: "0s", "90s" -> "1m30s", "1h0m0s"."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def _weak_string(key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    if value is None:
        return ""
    raise BadRequestError(f"{_CM_PREFIX}: value for key {_quote(key)} must be a string")


def custom_metadata(raw: dict[str, Any], drop_nulls: bool = False) -> dict[str, Any]:
    """Values as strings (nulls kept as None when ``drop_nulls``, for merge patches)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        out[key] = None if drop_nulls and value is None else _weak_string(key, value)
    return out


def validate_custom_metadata(values: dict[str, str]) -> None:
    """Vault's limits: at most 64 keys, keys 1..128 bytes, values 1..512, printable."""
    if len(values) > MAX_CUSTOM_KEYS:
        _raise_all([f"{_CM_PREFIX}: payload must contain at most {MAX_CUSTOM_KEYS} keys, "
                    f"provided {len(values)}"])
    errors: list[str] = []
    for key in sorted(values):
        value = values[key]
        klen, vlen = len(key.encode()), len(value.encode())
        if not 0 < klen <= MAX_CUSTOM_KEY_BYTES:
            errors.append(f"{_CM_PREFIX}: length of key {_quote(key)} is {klen} but must be "
                          f"0 < len(key) <= {MAX_CUSTOM_KEY_BYTES}")
        if not 0 < vlen <= MAX_CUSTOM_VALUE_BYTES:
            errors.append(f"{_CM_PREFIX}: length of value for key {_quote(key)} is {vlen} but "
                          f"must be 0 < len(value) <= {MAX_CUSTOM_VALUE_BYTES}")
        if not key.isprintable():
            errors.append(f"{_CM_PREFIX}: key {_quote(key)} ({key}) contains unprintable "
                          "characters")
        if not value.isprintable():
            errors.append(f"{_CM_PREFIX}: value for key {_quote(key)} contains unprintable "
                          "characters")
    if errors:
        _raise_all(errors)


def _raise_all(errors: list[str]) -> None:
    """go-multierror's text, which Vault returns as the single error message."""
    head = "1 error occurred" if len(errors) == 1 else f"{len(errors)} errors occurred"
    raise BadRequestError(head + ":\n" + "".join(f"\t* {e}\n" for e in errors) + "\n")


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
