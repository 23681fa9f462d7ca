"""``keys/`` (LIST), ``keys/<name>`` (create, read, delete) and OpenBao's
``keys/<name>/soft-delete`` and ``soft-delete-restore``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, StrongroomError
from strongroom.framework import Field, FieldData, FieldType, Path

from .common import decode_context, format_policy, not_found
from .keytypes import HMAC_MAX_KEY_SIZE, HMAC_MIN_KEY_SIZE, KeyType
from .policy import Policy, new_policy

if TYPE_CHECKING:
    from . import TransitBackend

MIN_AUTO_ROTATE = 3600
_KEY_FIELDS = {
    "name": Field(FieldType.STRING),
    "type": Field(FieldType.STRING, default="aes256-gcm96"),
    "derived": Field(FieldType.BOOL, default=False),
    "convergent_encryption": Field(FieldType.BOOL, default=False),
    "exportable": Field(FieldType.BOOL, default=False),
    "allow_plaintext_backup": Field(FieldType.BOOL, default=False),
    "context": Field(FieldType.STRING, default=""),
    "auto_rotate_period": Field(FieldType.DURATION, default=0),
    "key_size": Field(FieldType.INT, default=0),
    "external_key_ref": Field(FieldType.STRING, default=""),
}
_LIST_FIELDS = {"after": Field(FieldType.STRING, default=""),
                "limit": Field(FieldType.INT, default=0)}


def check_auto_rotate(period: int) -> None:
    if period != 0 and period < MIN_AUTO_ROTATE:
        raise BadRequestError("auto rotate period must be 0 to disable or at least an hour")


def paths(b: TransitBackend) -> list[Path]:
    from . import NAME

    def list_keys(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        limit = int(data.get("limit"))
        names = b.keys.names(str(data.get("after")), limit if limit > 0 else -1)
        if not names:
            return not_found()
        return Response(data={"keys": names})

    def write(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        name = m.group("name")
        derived = bool(data.get("derived"))
        convergent = bool(data.get("convergent_encryption"))
        period = int(data.get("auto_rotate_period"))
        check_auto_rotate(period)
        if not derived and convergent:
            raise BadRequestError("convergent encryption requires derivation to be enabled")
        type_name = str(data.get("type"))
        key_type = KeyType.from_name(type_name)
        if key_type is None:
            raise BadRequestError(f"unknown key type {type_name}")
        key_size = int(data.get("key_size"))
        if key_size != 0:
            if key_type is not KeyType.HMAC:
                raise BadRequestError(f"key_size is not valid for algorithm {type_name}")
            if not HMAC_MIN_KEY_SIZE <= key_size <= HMAC_MAX_KEY_SIZE:
                raise BadRequestError(f"invalid key_size {key_size}")
        if data.get("external_key_ref"):
            raise BadRequestError("must provide type=external-key to use external_key_ref")
        # OpenBao reports every create as an upsert (backend.getPolicy), so the warning
        # keysutil would give for an existing key never shows: none here either.
        policy, _created = b.keys.create(name, lambda: new_policy(
            name, key_type, derived=derived, convergent=convergent,
            exportable=bool(data.get("exportable")),
            allow_plaintext_backup=bool(data.get("allow_plaintext_backup")),
            auto_rotate_period=period, key_size=key_size))
        return Response(data=format_policy(policy))

    def read(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        policy = b.keys.get(m.group("name"))
        if policy is None:
            return not_found()
        context = decode_context(str(data.get("context")))
        return Response(data=format_policy(policy, context))

    def delete(req: Request, data: FieldData, m: re.Match[str]) -> None:
        name = m.group("name")
        try:
            b.keys.delete(name)
        except StrongroomError as exc:
            raise BadRequestError(f"error deleting policy {name}: {exc.message}") from None

    def soft_delete(flag: bool, warning: str) -> Callable[..., Response | None]:
        """OpenBao's keys/<name>/soft-delete (DELETE) and soft-delete-restore (write): the
        key stays stored but every use is refused until restored."""
        def handler(req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
            was: list[bool] = []

            def mark(p: Policy) -> None:
                was.append(p.soft_deleted)
                p.soft_deleted = flag
            policy = b.keys.update(m.group("name"), mark)
            if policy is None:
                return None  # OpenBao: 204 for a key that does not exist
            resp = Response(data=format_policy(policy))
            if was and was[0] == flag:
                resp.warnings.append(warning)
            return resp
        return handler

    name_field = {"name": Field(FieldType.STRING)}
    return [
        Path("keys/?", {Operation.LIST: list_keys}, _LIST_FIELDS),
        Path(f"keys/{NAME}/soft-delete",
             {Operation.DELETE: soft_delete(True, "key was already marked as soft deleted")},
             name_field),
        Path(f"keys/{NAME}/soft-delete-restore",
             {Operation.UPDATE: soft_delete(False, "key was already restored")}, name_field),
        Path(f"keys/{NAME}", {Operation.UPDATE: write, Operation.READ: read,
                              Operation.DELETE: delete}, _KEY_FIELDS),
    ]
