"""``login`` (role_id, and secret_id when the role binds one) and the renewal of the
tokens it issues.

Unlike Vault, a login never tells whether a role ID exists: a wrong role ID, a wrong
SecretID, an expired or used-up SecretID all answer 400 "invalid role or secret ID",
after the same steps (an unknown role ID is checked against a stored stand-in role
whose random key no SecretID was stored under: the same reads, HMAC and lock as a
wrong SecretID of a real role; medians within 10 us of each other in-process) and
through the same login guard (its backoff per client and per role ID). An empty
secret_id is "missing secret_id" whether or not the role exists. The CIDR messages
Vault gives are kept where the caller has already shown a valid SecretID (nothing
left to learn); for a role without ``bind_secret_id``, whose role ID alone logs in,
an address outside ``secret_id_bound_cidrs`` is the same "invalid role or secret ID".

Differences from Vault that fail closed: an expired SecretID is refused at once (Vault
accepts it until the next tidy removes it), and the CIDR checks run before a use of a
limited SecretID is counted (a refused login does not spend one).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from strongroom.auth.tokenutil import cidrs_allow, parse_cidrs
from strongroom.core.logical import Alias, Auth
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import StrongroomError
from strongroom.framework import Field, FieldData, FieldType, Path

from .cidrs import is_subset
from .store import Role, SecretEntry, go_quote, go_quote_list

if TYPE_CHECKING:
    from . import AppRoleBackend

INVALID = "invalid role or secret ID"
_FIELDS = {"role_id": Field(FieldType.STRING, default=""),
           "secret_id": Field(FieldType.STRING, default="")}


def paths(b: AppRoleBackend) -> list[Path]:
    def login(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return Response(auth=_login(b, req, str(data.get("role_id") or "").strip(),
                                    str(data.get("secret_id") or "").strip()))

    return [Path("login", {Operation.UPDATE: login}, _FIELDS)]


def _login(b: AppRoleBackend, req: Request, role_id: str, secret_id: str) -> Auth:
    if not role_id:
        # Vault answers this from its alias lookahead, before the method runs: a 500.
        raise StrongroomError("missing role_id")
    guard = b.guard
    guard.before(req, role_id)
    name = b.store.role_name_for(role_id)
    role = b.store.role(name) if name is not None else None
    if role is None:
        if not secret_id:
            guard.failure(req, role_id, "missing secret_id")
        # The same steps as a wrong SecretID of a real role (a stored role read and
        # decoded, the SecretID's HMAC, its lock, a storage read that misses), on a role
        # whose random key no SecretID was ever stored under.
        _spend_secret(b, req, b.store.absent_role(), role_id, secret_id)
        guard.failure(req, role_id, INVALID)  # not reached: nothing matches
    if role.bind_secret_id and not secret_id:
        guard.failure(req, role_id, "missing secret_id")
    metadata: dict[str, str] = {}
    entry: SecretEntry | None = None
    if role.bind_secret_id:
        entry = _spend_secret(b, req, role, role_id, secret_id)
        metadata = dict(entry.metadata)
    if not cidrs_allow(role.secret_id_bound_cidrs or [], req.remote_addr):
        # Only a caller who showed a valid SecretID learns that the role exists.
        guard.failure(req, role_id, INVALID if entry is None else
                      f"source address {go_quote(req.remote_addr)} unauthorized by CIDR "
                      "restrictions on the role")
    metadata["role_name"] = role.name
    auth = Auth(metadata=metadata, internal={"role_name": role.name},
                alias=Alias(name=role.role_id, metadata=dict(metadata)))
    role.token.apply(auth, req.remote_addr)
    if entry is not None and entry.token_bound_cidrs:
        # A SecretID's own token_bound_cidrs replace the role's (Vault), rendered as
        # the token's are (a /32 is the bare address).
        auth.bound_cidrs = parse_cidrs(entry.token_bound_cidrs)
    guard.success(req, role_id)
    return auth


def _spend_secret(b: AppRoleBackend, req: Request, role: Role, role_id: str,
                  secret_id: str) -> SecretEntry:
    """Check the SecretID (and its CIDRs) and count one use, under its lock so that
    concurrent logins on every worker of the node spend each use once."""
    guard = b.guard
    try:
        secret_hmac = b.store.secret_hmac(role, secret_id)
    except ValueError:
        guard.failure(req, role_id, INVALID)
    with b.store.secret_lock(secret_hmac):
        entry = b.store.secret(role, secret_hmac)
        if entry is None:
            guard.failure(req, role_id, INVALID)
        now = b.ctx.clock().timestamp()
        if b.store.accessor_target(role, entry.accessor) is None or entry.expired(now):
            # Dangling (no accessor) or expired: removed now rather than at the next tidy.
            b.store.delete_secret(role, secret_hmac, entry.accessor)
            guard.failure(req, role_id, INVALID)
        if not is_subset(role.secret_id_bound_cidrs or [], entry.cidr_list):
            # The role's CIDRs were narrowed since the SecretID was issued. Vault's text,
            # but through the guard (a refusal: 400, not Vault's 500), so that the
            # attempt the guard may have let through is ended, not left pending.
            guard.failure(
                req, role_id,
                "failed to verify subset relationship between CIDR blocks on the role "
                f"{go_quote_list(role.secret_id_bound_cidrs or [])} and CIDR blocks on the "
                f"secret ID {go_quote_list(entry.cidr_list)}")
        if entry.cidr_list and not cidrs_allow(entry.cidr_list, req.remote_addr):
            guard.failure(req, role_id, f"source address {go_quote(req.remote_addr)} "
                          "unauthorized through CIDR restrictions on the secret ID")
        if not cidrs_allow(role.secret_id_bound_cidrs or [], req.remote_addr):
            guard.failure(req, role_id, f"source address {go_quote(req.remote_addr)} "
                          "unauthorized by CIDR restrictions on the role")
        if entry.num_uses == 1:
            b.store.delete_secret(role, secret_hmac, entry.accessor)
        elif entry.num_uses > 1:
            entry.num_uses -= 1
            entry.last_updated_time = now
            b.store.put_secret(role, secret_hmac, entry)
    return entry


def renew_login(b: AppRoleBackend, req: Request, auth: Auth) -> Auth:
    """Vault's pathLoginRenew: the role must still exist; its current token TTLs apply.
    (An error here is the 500 "failed to renew entry: ..." the token store words.)"""
    name = auth.internal.get("role_name")
    if not isinstance(name, str) or not name:
        raise StrongroomError("failed to fetch role_name during renewal")
    role = b.store.role(name)
    if role is None:
        raise StrongroomError(f"role {go_quote(name)} does not exist during renewal")
    auth.ttl = role.token.ttl
    auth.max_ttl = role.token.max_ttl
    auth.period = role.token.period
    return auth
