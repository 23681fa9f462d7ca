"""``roles/<name>`` (dynamic credentials) and ``static-roles/<name>`` (one existing
database user whose password the engine rotates), each with its LIST."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path

from . import statements as sql
from .store import ROLE, STATIC_ROLE, Role, StaticRole

if TYPE_CHECKING:
    from . import DatabaseBackend

MIN_ROTATION_PERIOD = 5  # Vault's queue tick: a shorter period is refused
_NOT_FOUND: dict[str, list[str]] = {"errors": []}
_STMT = Field(FieldType.ANY)
_ROLE_FIELDS = {
    "name": Field(FieldType.STRING), "db_name": Field(FieldType.STRING),
    "creation_statements": _STMT, "revocation_statements": _STMT,
    "rollback_statements": _STMT, "renew_statements": _STMT,
    "default_ttl": Field(FieldType.DURATION), "max_ttl": Field(FieldType.DURATION),
    "credential_type": Field(FieldType.STRING), "credential_config": Field(FieldType.MAP),
}
_STATIC_FIELDS = {
    "name": Field(FieldType.STRING), "db_name": Field(FieldType.STRING),
    "username": Field(FieldType.STRING), "rotation_period": Field(FieldType.DURATION),
    "rotation_statements": _STMT, "credential_type": Field(FieldType.STRING),
    "credential_config": Field(FieldType.MAP),
}


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _list_of(prefix: str, b: DatabaseBackend) -> Any:
    def listing(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        keys = b.store.names(prefix)
        if not keys:
            return Response(status=404, raw=True, data=dict(_NOT_FOUND))
        return Response(data={"keys": keys})
    return listing


def _credential_type(data: FieldData) -> None:
    if data.has("credential_type") and data.get("credential_type") != "password":
        # rsa_private_key and client_certificate need plugins this build does not ship.
        raise BadRequestError(f'invalid credential_type "{data.get("credential_type")}"')


def paths(b: DatabaseBackend) -> list[Path]:
    from . import NAME

    def role_exists(req: Request, data: FieldData, m: re.Match[str]) -> bool:
        return b.store.role(m.group("name")) is not None

    def static_exists(req: Request, data: FieldData, m: re.Match[str]) -> bool:
        return b.store.static_role(m.group("name")) is not None

    def read_role(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        role = b.store.role(m.group("name"))
        if role is None:
            return Response(status=404, raw=True, data=dict(_NOT_FOUND))
        return Response(data={
            "db_name": role.db_name, "creation_statements": role.creation_statements,
            "revocation_statements": role.revocation_statements,
            "rollback_statements": role.rollback_statements,
            "renew_statements": role.renew_statements, "default_ttl": role.default_ttl,
            "max_ttl": role.max_ttl, "credential_type": role.credential_type})

    def write_role(req: Request, data: FieldData, m: re.Match[str]) -> None:
        name = m.group("name")
        if b.store.static_role(name) is not None:
            raise BadRequestError("Role and Static Role names must be unique")
        role = b.store.role(name) or Role()
        if data.has("db_name") or req.operation is Operation.CREATE:
            role.db_name = str(data.get("db_name") or "")
        if not role.db_name:
            raise BadRequestError("database name is required")
        _credential_type(data)
        for key in ("creation_statements", "revocation_statements", "rollback_statements",
                    "renew_statements"):
            if data.has(key):
                setattr(role, key, sql.parse_list(data.get(key)))
        role.revocation_statements = [s for s in role.revocation_statements if s.strip()]
        if data.has("default_ttl"):
            role.default_ttl = int(data.get("default_ttl"))
        if data.has("max_ttl"):
            role.max_ttl = int(data.get("max_ttl"))
        b.store.put_role(name, role)

    def delete_role(req: Request, data: FieldData, m: re.Match[str]) -> None:
        b.store.storage.delete(ROLE + m.group("name"))

    def read_static(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        role = b.store.static_role(m.group("name"))
        if role is None:
            return Response(status=404, raw=True, data=dict(_NOT_FOUND))
        out: dict[str, Any] = {
            "db_name": role.db_name, "username": role.username,
            "rotation_period": role.rotation_period,
            "rotation_statements": role.rotation_statements,
            "credential_type": role.credential_type}
        if role.last_vault_rotation:
            out["last_vault_rotation"] = rfc3339(role.last_vault_rotation)
        return Response(data=out)

    def write_static(req: Request, data: FieldData, m: re.Match[str]) -> None:
        _write_static(b, req, data, m.group("name"))

    def delete_static(req: Request, data: FieldData, m: re.Match[str]) -> None:
        b.store.storage.delete(STATIC_ROLE + m.group("name"))

    return [
        Path("roles/?", {Operation.LIST: _list_of(ROLE, b)}),
        Path(f"roles/{NAME}", {Operation.READ: read_role, Operation.UPDATE: write_role,
                               Operation.DELETE: delete_role}, _ROLE_FIELDS,
             existence=role_exists),
        Path("static-roles/?", {Operation.LIST: _list_of(STATIC_ROLE, b)}),
        Path(f"static-roles/{NAME}", {Operation.READ: read_static,
                                      Operation.UPDATE: write_static,
                                      Operation.DELETE: delete_static}, _STATIC_FIELDS,
             existence=static_exists),
    ]


def _write_static(b: DatabaseBackend, req: Request, data: FieldData, name: str) -> None:
    from .path_rotate import rotate_static

    if b.store.role(name) is not None:
        raise BadRequestError("Role and Static Role names must be unique")
    existing = b.store.static_role(name)
    role = existing or StaticRole()
    if data.has("db_name"):
        role.db_name = str(data.get("db_name"))
    if not role.db_name:
        raise BadRequestError("database name is a required field")
    username = str(data.get("username") or "")
    if existing is None:
        if not username:
            raise BadRequestError("username is a required field to create a static account")
        role.username = username
    elif username and username != role.username:
        raise BadRequestError("cannot update static account username")
    if data.has("rotation_period"):
        role.rotation_period = int(data.get("rotation_period"))
    elif existing is None:
        raise BadRequestError("rotation_period is required to create static accounts")
    if role.rotation_period < MIN_ROTATION_PERIOD:
        raise BadRequestError(
            f"rotation_period must be {MIN_ROTATION_PERIOD} seconds or more")
    _credential_type(data)
    if data.has("rotation_statements"):
        role.rotation_statements = sql.parse_list(data.get("rotation_statements"))
    b.config(role.db_name)  # the connection must exist
    if existing is None:
        # Vault takes the account over at once: the password is rotated before the
        # role is stored, and a failed rotation stores nothing.
        rotate_static(b, name, role, store=False)
    b.store.put_static_role(name, role)
