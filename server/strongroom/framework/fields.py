"""Typed request fields, validated at the edge with Vault's coercion rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from strongroom.errors import BadRequestError
from strongroom.framework.gotypes import GoParseError, duration_seconds, weak_int


class FieldType(StrEnum):
    STRING = "string"
    INT = "int"  # a Go int: int64 range, Vault's weak decoding ("0x10", true, "")
    BOOL = "bool"
    DURATION = "duration"  # seconds, or Go duration text; never negative
    SIGNED_DURATION = "signed_duration"  # the same, negative allowed
    MAP = "map"
    LIST = "list"  # comma-separated strings are accepted, as Vault does
    ANY = "any"


@dataclass(frozen=True)
class Field:
    type: FieldType = FieldType.STRING
    default: Any = None
    required: bool = False
    description: str = ""


_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no", ""}


def _go_error(name: str, reason: str) -> BadRequestError:
    # Vault's text: error converting input for field "name": <Go's reason>
    return BadRequestError(f'error converting input for field "{name}": {reason}')


def coerce(name: str, ftype: FieldType, value: Any) -> Any:
    """Convert a JSON value to the field's type or raise a 400 naming the field.

    Integers and durations are held to Go's 64-bit limits (see gotypes), so a
    value accepted here can be stored, added to a clock and serialized later.
    """
    if ftype is FieldType.INT:
        try:
            return weak_int(value)
        except GoParseError as exc:
            raise _go_error(name, f"'' {exc}") from None
    if ftype in (FieldType.DURATION, FieldType.SIGNED_DURATION):
        try:
            seconds = duration_seconds(value)
        except GoParseError as exc:
            raise _go_error(name, str(exc)) from None
        if seconds < 0 and ftype is FieldType.DURATION:
            raise _go_error(name, f"cannot provide negative value '{seconds}'")
        return seconds
    try:
        if ftype is FieldType.STRING:
            if isinstance(value, (dict, list)):
                raise TypeError
            return value if isinstance(value, str) else str(value).lower() if isinstance(
                value, bool
            ) else str(value)
        if ftype is FieldType.BOOL:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise TypeError
        if ftype is FieldType.MAP:
            if not isinstance(value, dict):
                raise TypeError
            return value
        if ftype is FieldType.LIST:
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list):
                raise TypeError
            return [str(v) for v in value]
        return value
    except (TypeError, ValueError):
        raise BadRequestError(
            f"error converting input for field {name!r}: expected {ftype.value}"
        ) from None


class FieldData:
    """The validated fields of one request; unknown keys are reported, not used."""

    def __init__(self, schema: Mapping[str, Field], raw: Mapping[str, Any]) -> None:
        self._schema = schema
        self._values: dict[str, Any] = {}
        for name, spec in schema.items():
            if name in raw and raw[name] is not None:
                self._values[name] = coerce(name, spec.type, raw[name])
            elif spec.required:
                raise BadRequestError(f"missing required field {name!r}")
        self.unknown = sorted(k for k in raw if k not in schema)
        self.raw = raw

    def get(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        return self._schema[name].default

    def has(self, name: str) -> bool:
        return name in self._values
