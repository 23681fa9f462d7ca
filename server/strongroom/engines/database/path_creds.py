"""``creds/<role>`` (a new database user per read, leased), ``static-creds/<role>``,
and the ``creds`` secret type: revoke drops the user (and ends its sessions), renew
moves its expiry (PostgreSQL's VALID UNTIL)."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from strongroom.core.logical import Secret
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldType, Path
from strongroom.framework.globmatch import glob_any

from .plugins import DatabaseError
from .store import DatabaseConfig

if TYPE_CHECKING:
    from . import DatabaseBackend

log = logging.getLogger(__name__)


def allowed(config: DatabaseConfig, role: str) -> bool:
    """Vault: "*" allows every role, else a glob of ``allowed_roles`` must match."""
    return "*" in config.allowed_roles or glob_any(config.allowed_roles, role)


class _Role(Protocol):
    @property
    def db_name(self) -> str: ...


R = TypeVar("R", bound=_Role)


def _usable(b: DatabaseBackend, name: str, role: R | None) -> tuple[R, DatabaseConfig]:
    """The role and its connection, when the role exists and the connection allows it."""
    if role is None:
        raise BadRequestError(f"unknown role: {name}")
    config = b.config(role.db_name)
    if not allowed(config, name):
        raise BadRequestError(f'"{name}" is not an allowed role')
    return role, config


def paths(b: DatabaseBackend) -> list[Path]:
    from . import NAME

    name_field = {"name": Field(FieldType.STRING)}
    return [
        Path(f"creds/{NAME}", {Operation.READ: lambda r, d, m: _creds(b, r, m)}, name_field),
        Path(f"static-creds/{NAME}", {Operation.READ: lambda r, d, m: _static(b, m)},
             name_field),
    ]


def _ttl(b: DatabaseBackend, default: int, maximum: int) -> int:
    """framework.CalculateTTL with no increment: the role's TTLs, else the mount's."""
    mount_default, mount_max = b.mount_ttls()
    ttl = default or mount_default
    cap = maximum or mount_max
    return min(ttl, cap) if cap else ttl


def _creds(b: DatabaseBackend, req: Request, m: re.Match[str]) -> Response:
    from . import SECRET_CREDS

    name = m.group("name")
    role, config = _usable(b, name, b.store.role(name))
    ttl = _ttl(b, role.default_ttl, role.max_ttl)
    plugin = b.plugin(role.db_name)
    password = b.generate_password(config)
    entry = req.token_entry
    display = entry.display_name if entry is not None else ""
    username = plugin.generate_username(name, display)
    with b.serialized(role.db_name):
        plugin.new_user(role.creation_statements, role.rollback_statements, username,
                        password, b.expiration(ttl))
    log.info("event=db_user_created mount=%s role=%s username=%s", b.ctx.mount.path, name,
             username)
    internal: dict[str, Any] = {
        "username": username, "role": name, "db_name": role.db_name,
        "revocation_statements": role.revocation_statements,
        "issued_at": b.now().timestamp(),
    }
    return Response(secret=Secret(SECRET_CREDS, {"username": username, "password": password},
                                  internal=internal, ttl=role.default_ttl,
                                  max_ttl=role.max_ttl))


def _static(b: DatabaseBackend, m: re.Match[str]) -> Response:
    from .path_roles import rfc3339

    name = m.group("name")
    role, _ = _usable(b, name, b.store.static_role(name))
    now = b.now().timestamp()
    ttl = max(0, round(role.last_vault_rotation + role.rotation_period - now))
    return Response(data={
        "username": role.username, "password": role.password, "ttl": ttl,
        "rotation_period": role.rotation_period,
        "last_vault_rotation": rfc3339(role.last_vault_rotation)})


def revoke(b: DatabaseBackend, secret: Secret) -> None:
    """Drop the user (the role's revocation statements, else the plugin's default)."""
    username = secret.internal.get("username")
    if not isinstance(username, str) or not username:
        raise DatabaseError("secret is missing username internal data")
    role_name = str(secret.internal.get("role") or "")
    role = b.store.role(role_name) if role_name else None
    if role is not None:
        db_name, statements = role.db_name, role.revocation_statements
    else:
        # The role is gone: what the lease kept is enough (Vault's embedded data).
        db_name = str(secret.internal.get("db_name") or "")
        if not db_name:
            raise DatabaseError(f'error during revoke: could not find role with name '
                                f'"{role_name}" or embedded revocation db name data')
        statements = [str(s) for s in secret.internal.get("revocation_statements") or []]
    with b.serialized(db_name):
        b.plugin(db_name).delete_user(username, statements)
    log.info("event=db_user_revoked mount=%s role=%s username=%s", b.ctx.mount.path,
             role_name, username)


def renew(b: DatabaseBackend, secret: Secret, increment: int) -> Secret | None:
    """Extend the user's expiry by ``increment`` (or the role's TTL), never past the
    role's (or mount's) max TTL counted from issue."""
    role_name = str(secret.internal.get("role") or "")
    role = b.store.role(role_name)
    if role is None:
        raise DatabaseError(f'error during renew: could not find role with name "{role_name}"')
    username = str(secret.internal.get("username") or "")
    mount_default, mount_max = b.mount_ttls()
    ttl = increment or role.default_ttl or mount_default
    maximum = role.max_ttl or mount_max
    issued = float(secret.internal.get("issued_at") or b.now().timestamp())
    if maximum:
        ttl = min(ttl, max(0, int(issued + maximum - b.now().timestamp())))
    if ttl > 0:
        with b.serialized(role.db_name):
            b.plugin(role.db_name).set_expiration(username, b.expiration(ttl),
                                                 role.renew_statements)
    return replace(secret, ttl=ttl, max_ttl=role.max_ttl)
