"""``keys/<name>/config`` (a key's settings) and ``config/keys`` (``disable_upsert``)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path

from .common import format_policy
from .path_keys import check_auto_rotate
from .policy import Policy

if TYPE_CHECKING:
    from . import TransitBackend

KEYS_CONFIG = "config/keys"
_CONFIG_FIELDS = {
    "name": Field(FieldType.STRING),
    "min_decryption_version": Field(FieldType.INT),
    "min_encryption_version": Field(FieldType.INT),
    "deletion_allowed": Field(FieldType.BOOL),
    "exportable": Field(FieldType.BOOL),
    "allow_plaintext_backup": Field(FieldType.BOOL),
    "auto_rotate_period": Field(FieldType.DURATION),
}
_FORCED_MIN = ("since Vault 0.3 (prior to the OpenBao fork), transit key numbering starts at "
               "1; forcing minimum to 1")


def upsert_disabled(b: TransitBackend) -> bool:
    raw = b.ctx.storage.get(KEYS_CONFIG)
    if raw is None:
        return False
    try:
        return bool(json.loads(raw).get("disable_upsert"))
    except (ValueError, AttributeError):
        return False


def _apply(p: Policy, data: FieldData, warnings: list[str]) -> bool:
    """Vault's pathKeysConfigWrite on a fresh copy; True when something changed."""
    changed = False
    if data.has("min_decryption_version"):
        value = int(data.get("min_decryption_version"))
        if value < 0:
            raise BadRequestError("min decryption version cannot be negative")
        if value == 0:
            value = 1
            warnings.append(_FORCED_MIN)
        if value != p.min_decryption_version:
            if value > p.latest_version:
                raise BadRequestError(f"cannot set min decryption version of {value}, latest "
                                      f"key version is {p.latest_version}")
            p.min_decryption_version = value
            changed = True
    if data.has("min_encryption_version"):
        value = int(data.get("min_encryption_version"))
        if value < 0:
            raise BadRequestError("min encryption version cannot be negative")
        if value != p.min_encryption_version:
            if value > p.latest_version:
                raise BadRequestError(f"cannot set min encryption version of {value}, latest "
                                      f"key version is {p.latest_version}")
            p.min_encryption_version = value
            changed = True
    if 0 < p.min_encryption_version < p.min_decryption_version:
        raise BadRequestError(
            "cannot set min encryption/decryption values; min encryption version of "
            f"{p.min_encryption_version} must be greater than or equal to min decryption "
            f"version of {p.min_decryption_version}")
    if data.has("deletion_allowed") and bool(data.get("deletion_allowed")) != (
            p.deletion_allowed):
        p.deletion_allowed = bool(data.get("deletion_allowed"))
        changed = True
    if p.min_decryption_version == 0:
        p.min_decryption_version = 1
        changed = True
    # exportable and allow_plaintext_backup can be set, never unset.
    if data.has("exportable") and data.get("exportable") and not p.exportable:
        p.exportable = True
        changed = True
    if data.has("allow_plaintext_backup") and data.get("allow_plaintext_backup") and (
            not p.allow_plaintext_backup):
        p.allow_plaintext_backup = True
        changed = True
    if data.has("auto_rotate_period"):
        period = int(data.get("auto_rotate_period"))
        check_auto_rotate(period)
        if period != p.auto_rotate_period:
            p.auto_rotate_period = period
            changed = True
    if not changed:
        return False
    if p.min_available_version > p.min_encryption_version:
        raise BadRequestError("min encryption version should not be less than min available "
                              "version")
    if p.min_available_version > p.min_decryption_version:
        raise BadRequestError("min decryption version should not be less then min available "
                              "version")
    return True


def paths(b: TransitBackend) -> list[Path]:
    from . import NAME

    def write_config(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        name = m.group("name")
        warnings: list[str] = []
        policy = b.keys.update(name, lambda p: _apply(p, data, warnings))
        if policy is None:
            raise BadRequestError(f"no existing key named {name} could be found")
        return Response(data=format_policy(policy), warnings=warnings)

    def read_keys_config(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return Response(data={"disable_upsert": upsert_disabled(b)})

    def write_keys_config(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        value = bool(data.get("disable_upsert"))
        if value != upsert_disabled(b):
            b.ctx.storage.put(KEYS_CONFIG, json.dumps({"disable_upsert": value}).encode())
        return Response(data={"disable_upsert": value})

    return [
        Path(f"keys/{NAME}/config", {Operation.UPDATE: write_config}, _CONFIG_FIELDS),
        Path("config/keys", {Operation.READ: read_keys_config,
                             Operation.UPDATE: write_keys_config},
             {"disable_upsert": Field(FieldType.BOOL, default=False)}),
    ]
