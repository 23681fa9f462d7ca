"""Typed request fields, validated at the edge with Vault's coercion rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from strongroom.config import ConfigError, parse_duration
from strongroom.errors import BadRequestError


class FieldType(StrEnum):
    STRING = "string"
    INT = "int"
    BOOL = "bool"
    DURATION = "duration"
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


def coerce(name: str, ftype: FieldType, value: Any) -> Any:
    """Convert a JSON value to the field's type or raise a 400 naming the field."""
    try:
        if ftype is FieldType.STRING:
            if isinstance(value, (dict, list)):
                raise TypeError
            return value if isinstance(value, str) else str(value).lower() if isinstance(
                value, bool
            ) else str(value)
        if ftype is FieldType.INT:
            if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
                raise TypeError
            return int(value)
        if ftype is FieldType.BOOL:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise TypeError
        if ftype is FieldType.DURATION:
            if isinstance(value, bool):
                raise TypeError
            return parse_duration(value)
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
    except (TypeError, ValueError, ConfigError):
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
