"""``role/`` (LIST), ``role/<name>`` (create, read, update, delete),
``role/<name>/role-id`` (read, update) and ``role/<name>/local-secret-ids`` (read)."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from strongroom.auth.tokenutil import DEPRECATED_FIELDS, TOKEN_FIELDS, upgrade
from strongroom.core.request import Operation, Request, Response
from strongroom.engines.kv.parsing import format_duration
from strongroom.errors import BadRequestError, NotFoundError
from strongroom.framework import Field, FieldData, FieldType, Path

from .cidrs import first_invalid
from .store import MAX_HMAC_INPUT, Role, go_quote, internal_error

if TYPE_CHECKING:
    from . import AppRoleBackend

# framework.GenericNameRegex("role_name")
ROLE_NAME = r"(?P<role_name>\w(?:[\w.-]*\w)?)"
_NOT_FOUND: dict[str, Any] = {"errors": []}
NO_CONSTRAINT_WARNING = ("Role does not have any constraints set on it. Updates to this role "
                         "will require a constraint to be set")
ROLE_FIELDS: dict[str, Field] = {
    "role_name": Field(FieldType.STRING),
    "bind_secret_id": Field(FieldType.BOOL, default=True),
    "bound_cidr_list": Field(FieldType.LIST),  # deprecated: secret_id_bound_cidrs
    "secret_id_bound_cidrs": Field(FieldType.LIST),
    "policies": DEPRECATED_FIELDS["policies"],  # deprecated: token_policies
    "secret_id_num_uses": Field(FieldType.INT),
    "secret_id_ttl": Field(FieldType.DURATION),
    "period": DEPRECATED_FIELDS["period"],  # deprecated: token_period
    "role_id": Field(FieldType.STRING),
    "local_secret_ids": Field(FieldType.BOOL),
    **TOKEN_FIELDS,
}
_LIST_FIELDS = {"after": Field(FieldType.STRING), "limit": Field(FieldType.INT)}
_DEPRECATED = {"policies": "token_policies", "period": "token_period"}
_TOKEN_TYPE_COMPAT = {"default-service": "service", "default-batch": "batch"}


def not_found() -> Response:
    return Response(status=404, raw=True, data=dict(_NOT_FOUND))


def role_data(role: Role) -> dict[str, Any]:
    out: dict[str, Any] = {
        "bind_secret_id": role.bind_secret_id,
        "secret_id_bound_cidrs": role.secret_id_bound_cidrs,
        "secret_id_num_uses": role.secret_id_num_uses,
        "secret_id_ttl": role.secret_id_ttl,
        "local_secret_ids": role.local_secret_ids,
        **role.token.to_data(),
    }
    if role.period:
        out["period"] = role.period
    if role.policies:
        out["policies"] = list(role.policies)
    return out


def paths(b: AppRoleBackend) -> list[Path]:
    def exists(req: Request, data: FieldData, m: re.Match[str]) -> bool:
        return b.store.role(m.group("role_name")) is not None

    def list_roles(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        keys = b.store.role_names(str(data.get("after") or ""), max(int(data.get("limit") or 0),
                                                                    0))
        return Response(data={"keys": keys}) if keys else not_found()

    def read_role(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        role = b.store.role(m.group("role_name"))
        if role is None:
            return not_found()
        resp = Response(data=role_data(role))
        if not role.has_constraint():
            resp.warnings.append(NO_CONSTRAINT_WARNING)
        return resp

    def write_role(req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        return _write_role(b, req, data, m.group("role_name"))

    def delete_role(req: Request, data: FieldData, m: re.Match[str]) -> None:
        name = m.group("role_name")
        with b.store.role_lock(name):
            role = b.store.role(name)
            if role is not None:
                b.store.delete_role(role)

    def read_role_id(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        role = b.store.role(m.group("role_name"))
        if role is None:
            return not_found()
        return Response(data={"role_id": role.role_id})

    def write_role_id(req: Request, data: FieldData, m: re.Match[str]) -> None:
        name = m.group("role_name")
        with b.store.role_lock(name):
            role = b.store.role(name)
            if role is None:
                raise NotFoundError(internal_error("unsupported path").message)
            previous = role.role_id
            role.role_id = str(data.get("role_id") or "")
            if not role.role_id:
                raise BadRequestError("missing role_id")
            b.store.put_role(role, previous)

    def read_local(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        role = b.store.role(m.group("role_name"))
        if role is None:
            return not_found()
        return Response(data={"local_secret_ids": role.local_secret_ids})

    name_only = {"role_name": Field(FieldType.STRING)}
    return [
        Path("role/?", {Operation.LIST: list_roles}, _LIST_FIELDS),
        Path(f"role/{ROLE_NAME}",
             {Operation.READ: read_role, Operation.CREATE: write_role,
              Operation.UPDATE: write_role, Operation.DELETE: delete_role},
             ROLE_FIELDS, existence=exists),
        Path(f"role/{ROLE_NAME}/role-id",
             {Operation.READ: read_role_id, Operation.UPDATE: write_role_id},
             {**name_only, "role_id": Field(FieldType.STRING)}),
        Path(f"role/{ROLE_NAME}/local-secret-ids", {Operation.READ: read_local}, name_only),
    ]


def mount_max_ttl(b: AppRoleBackend) -> int:
    """Vault's ``System().MaxLeaseTTL()`` for this mount: its tune, else the system's."""
    tuned = (b.ctx.mount.config or {}).get("max_lease_ttl")
    return tuned if isinstance(tuned, int) and tuned > 0 else b.ctx.system_max_lease_ttl


def _write_role(b: AppRoleBackend, req: Request, data: FieldData, name: str
                ) -> Response | None:
    if len(name.encode()) > MAX_HMAC_INPUT:
        raise BadRequestError(f"role_name is longer than maximum of {MAX_HMAC_INPUT} bytes")
    warnings: list[str] = []
    raw_type = data.raw.get("token_type")
    if isinstance(raw_type, str) and raw_type in _TOKEN_TYPE_COMPAT:
        # Vault's backwards-compatible spellings, said so in a warning.
        new_type = _TOKEN_TYPE_COMPAT[raw_type]
        warnings.append(f"{raw_type} has no useful meaning; adjusting to {new_type}")
        data = FieldData(ROLE_FIELDS, {**data.raw, "token_type": new_type})
    with b.store.role_lock(name):
        role = b.store.role(name)
        create = req.operation is Operation.CREATE
        if role is None:
            if not create:
                raise NotFoundError(f"role name {go_quote(name)} doesn't exist")
            role = Role(name=name.lower(), role_id="", hmac_key=str(uuid.uuid4()))
        previous_role_id = role.role_id
        _apply_fields(b, role, data, create)
        if role.token.max_ttl > mount_max_ttl(b):
            warnings.append("token_max_ttl is greater than the backend mount's maximum TTL "
                            "value; issued tokens' max TTL value will be truncated")
        b.store.put_role(role, previous_role_id)
    if warnings:
        return Response(warnings=warnings)
    return None


def _apply_fields(b: AppRoleBackend, role: Role, data: FieldData, create: bool) -> None:
    """Vault's pathRoleCreateUpdate, in its order (so the first error is Vault's)."""
    role.token.update_from(data, create, _DEPRECATED)
    if data.has("local_secret_ids"):
        if not create:
            raise BadRequestError("local_secret_ids can only be modified during role creation")
        role.local_secret_ids = bool(data.get("local_secret_ids"))
    if data.has("role_id"):
        role.role_id = str(data.get("role_id"))
    elif create:
        role.role_id = str(uuid.uuid4())
    if not role.role_id:
        raise BadRequestError("invalid role_id supplied, or failed to generate a role_id")
    if data.has("bind_secret_id") or create:
        role.bind_secret_id = bool(data.get("bind_secret_id"))
    for key in ("secret_id_bound_cidrs", "bound_cidr_list"):
        if data.has(key):
            role.secret_id_bound_cidrs = list(data.get(key))
            break
    if role.secret_id_bound_cidrs:
        bad = first_invalid(role.secret_id_bound_cidrs)
        if bad is not None:
            raise internal_error(f"failed to validate CIDR blocks: invalid CIDR address: {bad}")
    if data.has("secret_id_num_uses"):
        role.secret_id_num_uses = int(data.get("secret_id_num_uses"))
    if role.secret_id_num_uses < 0:
        raise BadRequestError("secret_id_num_uses cannot be negative")
    if data.has("secret_id_ttl"):
        role.secret_id_ttl = int(data.get("secret_id_ttl"))
    # Vault's tokenutil.UpgradeValue: the deprecated field follows the new one.
    role.policies = upgrade(data, "policies", "token_policies", role.policies,
                            list(role.token.policies)) or []
    role.period = upgrade(data, "period", "token_period", role.period, role.token.period) or 0
    maximum = mount_max_ttl(b)
    if role.period > maximum:
        raise BadRequestError(
            f"period of {go_quote(format_duration(role.period))} is greater than the "
            f"backend's maximum lease TTL of {go_quote(format_duration(maximum))}")
