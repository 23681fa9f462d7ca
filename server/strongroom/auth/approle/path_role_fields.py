"""Vault's one-field endpoints of a role, ``role/<name>/<field>`` (read, update,
delete: back to the default): policies, secret-id-num-uses, secret-id-ttl, period,
token-num-uses, token-ttl, token-max-ttl, bound-cidr-list, secret-id-bound-cidrs,
token-bound-cidrs. One table row each. (OpenBao 2.7 no longer serves
``bind-secret-id``: neither does Strongroom.)"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strongroom.auth.tokenutil import parse_cidrs, parse_policies
from strongroom.core.request import Operation, Request, Response
from strongroom.engines.kv.parsing import format_duration
from strongroom.errors import BadRequestError, NotFoundError
from strongroom.framework import Field, FieldData, FieldType, Path

from .cidrs import first_invalid
from .path_role import ROLE_NAME, mount_max_ttl, not_found
from .store import Role, go_quote, internal_error

if TYPE_CHECKING:
    from . import AppRoleBackend

_BOUND_CIDR_WARNING = ('The "bound_cidr_list" field is deprecated and will be removed. '
                       'Please use "secret_id_bound_cidrs" instead.')


@dataclass(frozen=True)
class OneField:
    segment: str
    fields: dict[str, Field]
    read: Callable[[Role], dict[str, Any]]
    # Applies the request to the role; False: nothing was given ("missing <name>").
    update: Callable[[AppRoleBackend, Role, FieldData], bool]
    reset: Callable[[Role], None]
    missing: str


def _set_attr(attr: str, name: str, minimum: int | None = None,
              token: bool = False) -> Callable[[AppRoleBackend, Role, FieldData], bool]:
    def update(b: AppRoleBackend, role: Role, data: FieldData) -> bool:
        if not data.has(name):
            return False
        target: Any = role.token if token else role
        setattr(target, attr, data.get(name))
        if minimum is not None and getattr(target, attr) < minimum:
            raise BadRequestError(f"{name} cannot be negative")
        return True
    return update


def _policies(b: AppRoleBackend, role: Role, data: FieldData) -> bool:
    if data.has("token_policies"):
        role.token.policies = parse_policies(data.get("token_policies"), "token_policies")
        role.policies = list(role.token.policies) if data.has("policies") else []
        return True
    if data.has("policies"):
        role.policies = parse_policies(data.get("policies"))
        role.token.policies = list(role.policies)
        return True
    return False


def _period(b: AppRoleBackend, role: Role, data: FieldData) -> bool:
    if data.has("token_period"):
        role.token.period = int(data.get("token_period"))
        role.period = role.token.period if data.has("period") else 0
    elif data.has("period"):
        role.period = role.token.period = int(data.get("period"))
    else:
        return False
    maximum = mount_max_ttl(b)
    if role.token.period > maximum:
        raise BadRequestError(
            f"period of {go_quote(format_duration(role.period))} is greater than the "
            f"backend's maximum lease TTL of {go_quote(format_duration(maximum))}")
    return True


def _token_ttl(b: AppRoleBackend, role: Role, data: FieldData) -> bool:
    if not data.has("token_ttl"):
        return False
    role.token.ttl = int(data.get("token_ttl"))
    if role.token.max_ttl > 0 and role.token.ttl > role.token.max_ttl:
        raise BadRequestError("token_ttl should not be greater than token_max_ttl")
    return True


def _token_max_ttl(b: AppRoleBackend, role: Role, data: FieldData) -> bool:
    if not data.has("token_max_ttl"):
        return False
    role.token.max_ttl = int(data.get("token_max_ttl"))
    if role.token.max_ttl > 0 and role.token.ttl > role.token.max_ttl:
        raise BadRequestError("token_max_ttl should be greater than or equal to token_ttl")
    return True


def _secret_cidrs(b: AppRoleBackend, role: Role, data: FieldData) -> bool:
    for name in ("secret_id_bound_cidrs", "bound_cidr_list"):
        if data.has(name):
            cidrs = list(data.get(name))
            if not cidrs:
                raise BadRequestError("missing bound_cidr_list")
            bad = first_invalid(cidrs)
            if bad is not None:
                raise BadRequestError(
                    f"failed to validate CIDR blocks: invalid CIDR address: {bad}")
            role.secret_id_bound_cidrs = cidrs
            break
    return True  # nothing given: the role is saved as it is (Vault)


def _token_cidrs(b: AppRoleBackend, role: Role, data: FieldData) -> bool:
    if not data.has("token_bound_cidrs"):
        return True  # nothing given: the role is saved as it is (Vault)
    try:
        role.token.bound_cidrs = parse_cidrs(data.get("token_bound_cidrs"))
    except BadRequestError as exc:
        raise BadRequestError(f"failed to parse token_bound_cidrs: {exc.message}") from None
    return True


def _policies_read(role: Role) -> dict[str, Any]:
    out: dict[str, Any] = {"token_policies": list(role.token.policies)}
    if role.policies:
        out["policies"] = list(role.policies)
    return out


def _period_read(role: Role) -> dict[str, Any]:
    out: dict[str, Any] = {"token_period": role.token.period}
    if role.period > 0:
        out["period"] = role.period
    return out


def _clear_policies(role: Role) -> None:
    role.token.policies, role.policies = [], []


def _clear_period(role: Role) -> None:
    role.token.period, role.period = 0, 0


def _reset(attr: str, value: Any, token: bool = False) -> Callable[[Role], None]:
    return lambda role: setattr(role.token if token else role, attr, value)


_INT, _DUR, _LIST = Field(FieldType.INT), Field(FieldType.DURATION), Field(FieldType.LIST)
_CIDR_FIELDS = {"secret_id_bound_cidrs": _LIST, "bound_cidr_list": _LIST}
ONE_FIELDS = (
    OneField("policies", {"token_policies": _LIST, "policies": _LIST}, _policies_read,
             _policies, _clear_policies, "missing token_policies"),
    OneField("secret-id-num-uses", {"secret_id_num_uses": _INT},
             lambda r: {"secret_id_num_uses": r.secret_id_num_uses},
             _set_attr("secret_id_num_uses", "secret_id_num_uses", minimum=0),
             _reset("secret_id_num_uses", 0), "missing secret_id_num_uses"),
    OneField("secret-id-ttl", {"secret_id_ttl": _DUR},
             lambda r: {"secret_id_ttl": r.secret_id_ttl},
             _set_attr("secret_id_ttl", "secret_id_ttl"), _reset("secret_id_ttl", 0),
             "missing secret_id_ttl"),
    OneField("period", {"token_period": _DUR, "period": _DUR}, _period_read, _period,
             _clear_period, "missing period"),
    OneField("token-num-uses", {"token_num_uses": _INT},
             lambda r: {"token_num_uses": r.token.num_uses},
             _set_attr("num_uses", "token_num_uses", token=True),
             _reset("num_uses", 0, token=True), "missing token_num_uses"),
    OneField("token-ttl", {"token_ttl": _DUR}, lambda r: {"token_ttl": r.token.ttl},
             _token_ttl, _reset("ttl", 0, token=True), "missing token_ttl"),
    OneField("token-max-ttl", {"token_max_ttl": _DUR},
             lambda r: {"token_max_ttl": r.token.max_ttl}, _token_max_ttl,
             _reset("max_ttl", 0, token=True), "missing token_max_ttl"),
    OneField("secret-id-bound-cidrs", _CIDR_FIELDS,
             lambda r: {"secret_id_bound_cidrs": r.secret_id_bound_cidrs}, _secret_cidrs,
             _reset("secret_id_bound_cidrs", None), "missing bound_cidr_list"),
    OneField("bound-cidr-list", _CIDR_FIELDS,
             # The deprecated list is moved into secret_id_bound_cidrs when read (Vault):
             # what is left under the old name is always empty.
             lambda r: {"bound_cidr_list": None}, _secret_cidrs, lambda r: None,
             "missing bound_cidr_list"),
    OneField("token-bound-cidrs", {"token_bound_cidrs": _LIST},
             # Go's nil slice when none: null, unlike the role's read ([]).
             lambda r: {"token_bound_cidrs": list(r.token.bound_cidrs) or None}, _token_cidrs,
             _reset("bound_cidrs", [], token=True), "missing token_bound_cidrs"),
)


def paths(b: AppRoleBackend) -> list[Path]:
    return [_path(b, spec) for spec in ONE_FIELDS]


def _path(b: AppRoleBackend, spec: OneField) -> Path:
    def read(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        role = b.store.role(m.group("role_name"))
        if role is None:
            return not_found()
        resp = Response(data=spec.read(role))
        if spec.segment == "bound-cidr-list":
            resp.warnings.append(_BOUND_CIDR_WARNING)
        return resp

    def update(req: Request, data: FieldData, m: re.Match[str]) -> None:
        name = m.group("role_name")
        with b.store.role_lock(name):
            role = b.store.role(name)
            if role is None:
                raise NotFoundError(internal_error("unsupported path").message)
            if not spec.update(b, role, data):
                raise BadRequestError(spec.missing)
            b.store.put_role(role, role.role_id)

    def delete(req: Request, data: FieldData, m: re.Match[str]) -> None:
        name = m.group("role_name")
        with b.store.role_lock(name):
            role = b.store.role(name)
            if role is None:
                return
            spec.reset(role)
            b.store.put_role(role, role.role_id)

    return Path(f"role/{ROLE_NAME}/{spec.segment}",
                {Operation.READ: read, Operation.UPDATE: update, Operation.DELETE: delete},
                {"role_name": Field(FieldType.STRING), **spec.fields})
