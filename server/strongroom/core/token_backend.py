"""The ``auth/token/`` endpoints: create, lookup, renew, revoke, roles."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from strongroom.core.request import Operation, Request, Response
from strongroom.core.token_roles import TokenRoles
from strongroom.core.tokens import TokenEntry, generate_accessor, token_lookup_data
from strongroom.errors import BadRequestError, PermissionDeniedError
from strongroom.framework import Field, FieldData, FieldType, Path, PathBackend

if TYPE_CHECKING:
    from strongroom.core.core import Core

_CREATE_FIELDS = {
    "id": Field(FieldType.STRING),
    "policies": Field(FieldType.LIST),
    "meta": Field(FieldType.MAP),
    "no_parent": Field(FieldType.BOOL, False),
    "no_default_policy": Field(FieldType.BOOL, False),
    "renewable": Field(FieldType.BOOL, True),
    "ttl": Field(FieldType.DURATION, 0),
    "lease": Field(FieldType.DURATION, 0),
    "type": Field(FieldType.STRING, "service"),
    "explicit_max_ttl": Field(FieldType.DURATION, 0),
    "display_name": Field(FieldType.STRING, ""),
    "num_uses": Field(FieldType.INT, 0),
    "period": Field(FieldType.DURATION, 0),
    "entity_alias": Field(FieldType.STRING),
    "role_name": Field(FieldType.STRING),
}
_TOKEN = {"token": Field(FieldType.STRING)}
_ACCESSOR = {"accessor": Field(FieldType.STRING)}
_RENEW = {"token": Field(FieldType.STRING), "increment": Field(FieldType.DURATION, 0)}
_DISPLAY_NAME = re.compile(r"[^a-zA-Z0-9-]")


class TokenBackend(PathBackend):
    def __init__(self, core: Core) -> None:
        self._core = core
        self._roles = TokenRoles(core)
        read_or_update = (Operation.READ, Operation.UPDATE)
        super().__init__(
            [
                Path("create", {Operation.UPDATE: self._create}, _CREATE_FIELDS),
                Path("create-orphan", {Operation.UPDATE: self._create_orphan}, _CREATE_FIELDS),
                Path("create/(?P<role_name>[^/]+)", {Operation.UPDATE: self._create_role},
                     _CREATE_FIELDS),
                Path("lookup-self", dict.fromkeys(read_or_update, self._lookup_self), _TOKEN),
                Path("lookup", dict.fromkeys(read_or_update, self._lookup), _TOKEN),
                Path("lookup/(?P<token>.+)", {Operation.READ: self._lookup}, _TOKEN),
                Path("lookup-accessor", {Operation.UPDATE: self._lookup_accessor}, _ACCESSOR),
                Path("lookup-accessor/(?P<accessor>.+)", {Operation.UPDATE: self._lookup_accessor},
                     _ACCESSOR),
                Path("renew-self", {Operation.UPDATE: self._renew_self}, _RENEW),
                Path("renew", {Operation.UPDATE: self._renew}, _RENEW),
                Path("renew/(?P<token>.+)", {Operation.UPDATE: self._renew}, _RENEW),
                Path("renew-accessor", {Operation.UPDATE: self._renew_accessor},
                     {**_ACCESSOR, "increment": Field(FieldType.DURATION, 0)}),
                Path("revoke-self", {Operation.UPDATE: self._revoke_self}),
                Path("revoke", {Operation.UPDATE: self._revoke}, _TOKEN),
                Path("revoke/(?P<token>.+)", {Operation.UPDATE: self._revoke}, _TOKEN),
                Path("revoke-accessor", {Operation.UPDATE: self._revoke_accessor}, _ACCESSOR),
                Path("revoke-accessor/(?P<accessor>.+)", {Operation.UPDATE: self._revoke_accessor},
                     _ACCESSOR),
                Path("revoke-orphan", {Operation.UPDATE: self._revoke_orphan}, _TOKEN),
                Path("revoke-orphan/(?P<token>.+)", {Operation.UPDATE: self._revoke_orphan},
                     _TOKEN),
                *self._roles.paths(),
            ],
            sudo_patterns=("revoke-orphan", "revoke-orphan/*", "accessors", "accessors/*"),
        )

    # -- create -----------------------------------------------------------------

    def _create(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return self._issue(req, data, orphan=bool(data.get("no_parent")), role=None)

    def _create_orphan(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return self._issue(req, data, orphan=True, role=None, orphan_allowed=True)

    def _create_role(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        role = self._roles.get(m.group("role_name"))
        if role is None:
            raise BadRequestError(f"unknown role {m.group('role_name')}")
        return self._issue(req, data, orphan=bool(role.get("orphan")), role=role,
                           orphan_allowed=True)

    def _issue(  # noqa: C901 - Vault's creation rules are one sequence of checks
        self,
        req: Request,
        data: FieldData,
        *,
        orphan: bool,
        role: dict[str, Any] | None,
        orphan_allowed: bool = False,
    ) -> Response:
        parent = req.token_entry
        assert parent is not None, "the core authenticates before routing"
        core = self._core
        now = core.now()
        privileged = "root" in parent.policies or core.has_sudo(parent, req.path)
        if data.get("type") not in ("service", "default", ""):
            raise BadRequestError("only service tokens are supported")
        if orphan and not orphan_allowed and not privileged:
            raise BadRequestError("root or sudo privileges required to create orphan token")
        if data.has("id") and not privileged:
            raise BadRequestError("root or sudo privileges required to specify token id")
        num_uses = int(data.get("num_uses"))
        if num_uses < 0:
            raise BadRequestError("number of uses cannot be negative")

        parent_policies = sorted(set(parent.policies))
        policies = data.get("policies") if data.has("policies") else None
        if policies is None:
            policies = list(role["allowed_policies"]) if role and role.get(
                "allowed_policies") else [p for p in parent_policies if p != "root"] or (
                ["root"] if parent_policies == ["root"] else [])
        policies = sorted({p.strip().lower() for p in policies if p.strip()})
        if role is not None:
            self._roles.check_policies(role, policies)
        elif not privileged and not set(policies) - {"default"} <= set(parent_policies):
            raise BadRequestError("child policies must be subset of parent")
        if "root" in policies and "root" not in parent_policies:
            raise BadRequestError("root tokens may not be created from a non-root token")
        if not data.get("no_default_policy") and "default" not in policies and "root" not in (
            policies
        ):
            policies.append("default")
            policies.sort()
        if not policies:
            raise BadRequestError("token has no policies")

        period = int(role.get("period", 0) if role else 0) or int(data.get("period"))
        explicit_max = int(data.get("explicit_max_ttl")) or int(
            role.get("explicit_max_ttl", 0) if role else 0)
        ttl = int(data.get("ttl")) or int(data.get("lease"))
        if period:
            ttl = period
        elif not ttl:
            ttl = 0 if "root" in policies else core.default_lease_ttl
        if ttl and not period:
            ttl = min(ttl, core.max_lease_ttl)
        if explicit_max and (not ttl or ttl > explicit_max):
            ttl = explicit_max
        if not orphan and parent.expire_at and (not ttl or now + ttl > parent.expire_at):
            ttl = max(1, int(parent.expire_at - now))

        display = "token"
        if data.get("display_name"):
            display = "token-" + _DISPLAY_NAME.sub("-", data.get("display_name"))
        path = "auth/token/create" + (f"/{role['name']}" if role else "")
        entry = TokenEntry(
            accessor=generate_accessor(),
            policies=policies,
            path=path,
            creation_time=now,
            display_name=display,
            meta={str(k): str(v) for k, v in (data.get("meta") or {}).items()} or None,
            num_uses=num_uses,
            ttl=ttl,
            creation_ttl=ttl,
            explicit_max_ttl=explicit_max,
            period=period,
            expire_at=now + ttl if ttl else 0.0,
            parent_hash="" if orphan else parent.hash,
            renewable=bool(data.get("renewable")) and bool(role.get("renewable", True)
                                                           if role else True),
            role=role["name"] if role else "",
        )
        token_id = core.tokens.create(entry, token_id=data.get("id") or None)
        return Response(auth=auth_block(entry, token_id, now))

    # -- lookup ---------------------------------------------------------------

    def _lookup_self(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        entry = req.token_entry
        if entry is None or req.token is None:
            raise PermissionDeniedError()
        return Response(data=token_lookup_data(entry, req.token, self._core.now()))

    def _target(self, data: FieldData) -> tuple[TokenEntry, str]:
        token = data.get("token")
        if not token:
            raise BadRequestError("missing token to look up")
        entry = self._core.tokens.lookup(token, self._core.now())
        if entry is None:
            raise BadRequestError("bad token")
        return entry, token

    def _lookup(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        entry, token = self._target(data)
        return Response(data=token_lookup_data(entry, token, self._core.now()))

    def _by_accessor(self, data: FieldData) -> TokenEntry:
        accessor = data.get("accessor")
        if not accessor:
            raise BadRequestError("missing accessor")
        entry = self._core.tokens.lookup_accessor(accessor, self._core.now())
        if entry is None:
            raise BadRequestError("invalid accessor")
        return entry

    def _lookup_accessor(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return Response(data=token_lookup_data(self._by_accessor(data), "", self._core.now()))

    # -- renew ----------------------------------------------------------------

    def _renew_self(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        assert req.token_entry is not None and req.token is not None
        return self._do_renew(req.token_entry, req.token, int(data.get("increment")))

    def _renew(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        entry, token = self._target(data)
        return self._do_renew(entry, token, int(data.get("increment")))

    def _renew_accessor(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return self._do_renew(self._by_accessor(data), "", int(data.get("increment")))

    def _do_renew(self, entry: TokenEntry, token: str, increment: int) -> Response:
        core = self._core
        now = core.now()
        if not entry.renewable or not entry.expire_at:
            raise BadRequestError("lease is not renewable")
        if entry.period:
            ttl = entry.period
        else:
            ttl = increment or entry.creation_ttl
            hard_limit = entry.creation_time + (entry.explicit_max_ttl or core.max_lease_ttl)
            ttl = max(0, min(ttl, int(hard_limit - now)))
        if entry.explicit_max_ttl:
            ttl = min(ttl, max(0, int(entry.creation_time + entry.explicit_max_ttl - now)))
        entry.ttl = ttl
        entry.expire_at = now + ttl
        core.tokens.save(entry)
        core.tokens_changed()
        return Response(auth=auth_block(entry, token, now))

    # -- revoke ---------------------------------------------------------------

    def _revoke_self(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        assert req.token_entry is not None
        self._core.revoke_token(req.token_entry)

    def _revoke(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        token = data.get("token")
        entry = self._core.tokens.lookup(token, self._core.now()) if token else None
        if entry is not None:  # revoking an unknown token is a no-op, as in Vault
            self._core.revoke_token(entry)

    def _revoke_accessor(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        self._core.revoke_token(self._by_accessor(data))

    def _revoke_orphan(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        entry, _ = self._target(data)
        self._core.revoke_token(entry, orphan_children=True)


def auth_block(entry: TokenEntry, token_id: str, now: float) -> dict[str, Any]:
    """The ``auth`` object of a login or token-create response."""
    return {
        "client_token": token_id,
        "accessor": entry.accessor,
        "policies": entry.policies,
        "token_policies": entry.policies,
        "identity_policies": None,
        "metadata": entry.meta,
        "lease_duration": entry.remaining_ttl(now),
        "renewable": entry.renewable,
        "entity_id": entry.entity_id,
        "token_type": entry.type,
        "orphan": entry.orphan,
        "mfa_requirement": None,
        "num_uses": entry.num_uses,
    }
