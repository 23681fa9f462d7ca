"""The ``auth/token/`` endpoints: create, lookup, renew, revoke, accessors, roles."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from strongroom.core.logical import SpecialPaths
from strongroom.core.request import Operation, Request, Response
from strongroom.core.token_create import issue
from strongroom.core.token_format import auth_of, token_lookup_data
from strongroom.core.token_renew import NotRenewed, login_renewal
from strongroom.core.token_roles import TokenRoles
from strongroom.core.token_tidy import TIDY_RUNNING, TIDY_STARTED
from strongroom.core.token_ttl import calculate_ttl
from strongroom.core.tokens import TokenEntry
from strongroom.errors import (
    BadRequestError,
    NoRouteError,
    NotFoundError,
    PermissionDeniedError,
    StrongroomError,
    UnsupportedOperationError,
    multierror,
)
from strongroom.framework import Field, FieldData, FieldType, Path, PathBackend
from strongroom.node.locks import node_lock

if TYPE_CHECKING:
    from strongroom.core.core import Core

_CREATE_FIELDS = {
    "id": Field(FieldType.STRING),
    "policies": Field(FieldType.LIST),
    "meta": Field(FieldType.MAP),
    "no_parent": Field(FieldType.BOOL, False),
    "no_default_policy": Field(FieldType.BOOL, False),
    "renewable": Field(FieldType.BOOL, True),
    "ttl": Field(FieldType.ANY),  # Vault: a string, parsed by the handler
    "lease": Field(FieldType.ANY),  # Vault: a string, parsed by the handler
    "type": Field(FieldType.STRING, ""),
    "explicit_max_ttl": Field(FieldType.ANY),  # Vault: a string, parsed by the handler
    "display_name": Field(FieldType.STRING, ""),
    "num_uses": Field(FieldType.INT, 0),
    "period": Field(FieldType.ANY),  # Vault: a string, parsed by the handler
    "entity_alias": Field(FieldType.STRING),
}
_ROLE_CREATE_FIELDS = {**_CREATE_FIELDS, "role_name": Field(FieldType.STRING)}
_TOKEN = {"token": Field(FieldType.STRING)}
_ACCESSOR = {"accessor": Field(FieldType.STRING)}
_RENEW = {"token": Field(FieldType.STRING), "increment": Field(FieldType.DURATION, 0)}


class TokenBackend(PathBackend):
    def __init__(self, core: Core) -> None:
        self._core = core
        self._roles = TokenRoles(core)
        read_or_update = (Operation.READ, Operation.UPDATE)
        super().__init__(
            [
                Path("create", {Operation.UPDATE: self._create}, _CREATE_FIELDS),
                Path("create-orphan", {Operation.UPDATE: self._create_orphan},
                     _ROLE_CREATE_FIELDS),
                Path("create/(?P<role_name>[^/]+)", {Operation.UPDATE: self._create_role},
                     _ROLE_CREATE_FIELDS),
                Path("lookup-self", dict.fromkeys(read_or_update, self._lookup_self), _TOKEN),
                Path("lookup", dict.fromkeys(read_or_update, self._lookup), _TOKEN),
                Path("lookup-accessor", {Operation.UPDATE: self._lookup_accessor}, _ACCESSOR),
                Path("renew-self", {Operation.UPDATE: self._renew_self}, _RENEW),
                Path("renew", {Operation.UPDATE: self._renew}, _RENEW),
                Path("renew-accessor", {Operation.UPDATE: self._renew_accessor},
                     {**_ACCESSOR, "increment": Field(FieldType.DURATION, 0)}),
                Path("revoke-self", {Operation.UPDATE: self._revoke_self}),
                Path("revoke", {Operation.UPDATE: self._revoke}, _TOKEN),
                Path("revoke-accessor", {Operation.UPDATE: self._revoke_accessor}, _ACCESSOR),
                Path("revoke-orphan", {Operation.UPDATE: self._revoke_orphan}, _TOKEN),
                Path("accessors/?", {Operation.LIST: self._list_accessors}),
                Path("tidy", {Operation.UPDATE: self._tidy}),
                *self._roles.paths(),
            ],
            # Vault's PathsSpecial.Root for the token store. Vault has no variants taking
            # the token or accessor in the URL (where it would be logged): neither do we.
            special_paths=SpecialPaths(sudo=("revoke-orphan/*", "accessors*")),
        )

    def handle(self, req: Request, rel_path: str) -> Response | None:
        try:
            return super().handle(req, rel_path)
        except NoRouteError:
            # Vault's framework answer, not the router's: the mount exists, the path not.
            raise NotFoundError(multierror("unsupported path")) from None
        except UnsupportedOperationError as exc:
            if exc.message != "unsupported operation":
                raise
            raise UnsupportedOperationError(multierror(exc.message)) from None  # as Vault

    # -- create -----------------------------------------------------------------

    def _create(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return issue(self._core, req, data, m.string, orphan=False, role=None)

    def _create_orphan(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return issue(self._core, req, data, m.string, orphan=True, role=None)

    def _create_role(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        name = m.group("role_name")
        role = self._roles.get(name)
        if role is None:
            raise BadRequestError(f"unknown role {name}")
        return issue(self._core, req, data, m.string, orphan=False, role=role)

    # -- lookup ---------------------------------------------------------------

    def _lookup_self(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        entry = req.token_entry
        if entry is None or req.token is None:
            raise PermissionDeniedError()
        return Response(data=token_lookup_data(entry, req.token, self._core.now()))

    def _target(self, req: Request, data: FieldData, default_self: bool = False,
                missing: str = "bad token") -> tuple[TokenEntry | None, str]:
        token = data.get("token") or (req.token if default_self else None)
        if not token:
            raise BadRequestError("missing token ID")
        if token == req.token and req.token_entry is not None:
            return req.token_entry, token
        entry = self._core.tokens.lookup(token, self._core.now())
        if entry is None and missing:
            raise BadRequestError(missing)
        return entry, token

    def _lookup(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        try:
            entry, token = self._target(req, data, default_self=True)
        except BadRequestError as exc:
            if exc.message == "bad token":
                raise PermissionDeniedError("bad token") from None  # Vault: 403
            raise
        assert entry is not None
        return Response(data=token_lookup_data(entry, token, self._core.now()))

    def _by_accessor(self, data: FieldData) -> TokenEntry:
        accessor = data.get("accessor")
        if not accessor:
            raise BadRequestError(multierror("missing accessor"))
        entry = self._core.tokens.lookup_accessor(accessor, self._core.now())
        if entry is None:
            raise BadRequestError(multierror("invalid accessor"))
        return entry

    def _lookup_accessor(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return Response(data=token_lookup_data(self._by_accessor(data), "", self._core.now()))

    def _list_accessors(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        keys = self._core.tokens.accessors()
        if not keys:
            raise NotFoundError("")
        return Response(data={"keys": keys})

    def _tidy(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        # As Vault: the work runs in the background (the owner's, token_tidy.py).
        if not self._core.tokens.request_tidy(self._core.now()):
            return Response(warnings=[TIDY_RUNNING])
        return Response(status=202, warnings=[TIDY_STARTED])

    # -- renew ----------------------------------------------------------------

    def _renew_self(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        assert req.token_entry is not None and req.token is not None
        if req.token_entry.num_uses < 0:
            raise BadRequestError("token not found")  # on its last use: Vault's lookup misses it
        return self._do_renew(req.token_entry, req.token, int(data.get("increment")), req)

    def _renew(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        entry, token = self._target(req, data, missing="token not found")
        assert entry is not None
        return self._do_renew(entry, token, int(data.get("increment")), req)

    def _renew_accessor(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return self._do_renew(self._by_accessor(data), "", int(data.get("increment")), req)

    def _do_renew(self, entry: TokenEntry, token: str, increment: int,
                  req: Request) -> Response:
        core = self._core
        if entry.type == "batch":
            raise BadRequestError("batch tokens cannot be renewed")
        now = core.now()
        if not entry.renewable or not entry.expire_at:
            raise BadRequestError("lease is not renewable")
        try:
            # A login's token: its auth method decides (core/token_renew.py).
            from_login = login_renewal(core, req, entry, increment)
        except NotRenewed:
            return Response()
        period, explicit_max = entry.period, entry.explicit_max_ttl
        if from_login is not None:
            ttl, warnings = from_login
        elif entry.role:
            # As Vault: a role token renews under its role's current period and cap.
            role = self._roles.get(entry.role)
            if role is None:
                raise StrongroomError(multierror(
                    f'failed to renew entry: original token role "{entry.role}" could not be '
                    "found, not renewing"))  # a 500, as in Vault
            period = role["token_period"]
            explicit_max = min((t for t in (explicit_max, role["token_explicit_max_ttl"]) if t),
                               default=0)
        if from_login is None:
            ttl, warnings = calculate_ttl(
                default_ttl=core.default_lease_ttl, max_ttl=core.max_lease_ttl,
                increment=increment, backend_ttl=entry.ttl, period=period,
                explicit_max=explicit_max, start=int(entry.creation_time), now=int(now))
        with node_lock("token|" + entry.hash):
            # Re-read under the lock so a use spent meanwhile (another worker) is kept.
            current = core.tokens.lookup_hash(entry.hash, now)
            if current is not None:
                entry = current
                entry.ttl, entry.expire_at, entry.last_renewal = ttl, now + ttl, now
                core.tokens.save(entry)
        core.tokens_changed()
        return Response(auth=auth_of(entry, token, ttl, num_uses=entry.creation_num_uses),
                        warnings=warnings)

    # -- revoke ---------------------------------------------------------------

    def _revoke_entry(self, entry: TokenEntry, orphan_children: bool = False) -> None:
        if entry.type == "batch":
            raise BadRequestError("batch tokens cannot be revoked")
        self._core.revoke_token(entry, orphan_children=orphan_children)

    def _revoke_self(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        assert req.token_entry is not None
        self._revoke_entry(req.token_entry)

    def _revoke(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        entry, _ = self._target(req, data, missing="")
        if entry is not None:  # revoking an unknown token is a no-op, as in Vault
            self._revoke_entry(entry)

    def _revoke_accessor(self, req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        accessor = data.get("accessor")
        if not accessor:
            raise BadRequestError(multierror("missing accessor"))
        tokens = self._core.tokens
        if not tokens.accessor_exists(accessor):
            return Response(warnings=["No token found with this accessor"])
        entry = tokens.lookup_accessor(accessor, self._core.now())
        if entry is None:
            raise BadRequestError("token not found")
        self._revoke_entry(entry)
        return None

    def _revoke_orphan(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        caller = req.token_entry
        assert caller is not None
        if not data.get("token"):
            raise BadRequestError("missing token ID")
        if "root" not in caller.policies and not self._core.has_sudo(caller, req.path):
            raise BadRequestError("root or sudo privileges required to revoke and orphan")
        entry, _ = self._target(req, data, missing="token to revoke not found")
        assert entry is not None
        self._revoke_entry(entry, orphan_children=True)
