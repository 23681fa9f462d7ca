"""Vault's (Go's) weak input decoding for the KV fields the framework types do not cover.

Integers accept JSON numbers without a fraction, booleans and Go integer literals
("" is 0); durations accept seconds or Go duration strings; custom metadata
values become strings. Every failure is a 400 naming the field.
"""

from __future__ import annotations

import json
from typing import Any

from strongroom.errors import BadRequestError
from strongroom.framework import gotypes
from strongroom.framework.gotypes import GoParseError, weak_int

MAX_CUSTOM_KEYS = 64
MAX_CUSTOM_KEY_BYTES = 128
MAX_CUSTOM_VALUE_BYTES = 512
_CM_PREFIX = "custom_metadata validation failed"


def _field_error(name: str, expected: str) -> BadRequestError:
    return BadRequestError(f'error converting input for field "{name}": expected {expected}')


def go_int(name: str, value: Any) -> int:
    """One integer, decoded as Vault's TypeInt does (a Go int: int64 range)."""
    try:
        return weak_int(value)
    except GoParseError as exc:
        raise BadRequestError(
            f'error converting input for field "{name}": \'\' {exc}') from None


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
    """parseutil.ParseDurationSecond, truncated to seconds, within Go's int64 nanoseconds.

    Bounding here is what keeps a stored delete_version_after addable to a
    clock and printable: Vault refuses what does not fit, and so do we.
    """
    try:
        seconds = gotypes.duration_seconds(value)
    except GoParseError as exc:
        raise BadRequestError(f'error converting input for field "{name}": {exc}') from None
    if seconds < 0 and not allow_negative:
        raise BadRequestError(f'error converting input for field "{name}": cannot provide '
                              f"negative value '{seconds}'")
    return seconds


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
