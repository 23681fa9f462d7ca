"""The pipeline stages that act on a backend's typed result: the lease and the login.

A ``Secret`` gets its TTL bounded by the mount (tune, else the config's system TTLs)
and, unless it is a KV secret (Vault reports a KV read's TTL but registers no lease),
a lease registered with the expiration manager. An ``Auth`` becomes a token here, for
the token store's own creation endpoints and for every auth method's login alike.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from strongroom.core.hooks import LeaseRegistrar, LeaseRegistrationError
from strongroom.core.logical import KV_SECRET, Auth, LogicalBackend, Secret
from strongroom.core.token_batch import BATCH_TYPE
from strongroom.core.token_roles import sanitize_policies
from strongroom.core.token_ttl import calculate_ttl
from strongroom.core.tokens import TokenEntry, generate_accessor
from strongroom.errors import BadRequestError, PermissionDeniedError, StrongroomError

if TYPE_CHECKING:
    from strongroom.core.core import Core
    from strongroom.core.mounts import MountEntry
    from strongroom.core.request import Request, Response

log = logging.getLogger(__name__)
# Mount types whose secrets are never leased (Vault's "kv" and "generic").
_UNLEASED_MOUNTS = frozenset({"kv", "generic"})
_TOKEN_MOUNT = "token"  # noqa: S105 - a mount type, not a secret
SERVICE_TYPE = "service"


def mount_ttls(core: Core, mount: MountEntry | None) -> tuple[int, int]:
    """Vault's system view of a mount: its tuned default and max lease TTL, else the
    system's (the config's ``default_lease_ttl``/``max_lease_ttl``)."""
    cfg = (mount.config or {}) if mount is not None else {}
    default = cfg.get("default_lease_ttl") or core.default_lease_ttl
    maximum = cfg.get("max_lease_ttl") or core.max_lease_ttl
    return int(default), int(maximum)


def register_lease(core: Core, registrar: LeaseRegistrar | None, req: Request,
                   resp: Response, backend: LogicalBackend, mount: MountEntry | None) -> None:
    """The lease stage: bound and register ``resp.secret`` (if any, and not final)."""
    secret = resp.secret
    if secret is None or secret.final:
        return
    secret.final = True
    if secret.type == KV_SECRET or (mount is not None and mount.type in _UNLEASED_MOUNTS):
        secret.renewable = False  # reported, never registered (Vault: "massive slowdown")
        return
    default, maximum = mount_ttls(core, mount)
    if 0 < secret.max_ttl < maximum:
        maximum = secret.max_ttl
    now = int(core.now())
    ttl, warnings = calculate_ttl(default_ttl=default, max_ttl=maximum, increment=0,
                                  backend_ttl=secret.ttl, period=0, explicit_max=0,
                                  start=now, now=now)
    secret.ttl = ttl
    resp.warnings.extend(warnings)
    try:
        if registrar is None or mount is None:
            # Fail closed: a credential nobody would ever revoke must not be handed out.
            raise StrongroomError("no expiration manager to register the lease with")
        secret.lease_id = registrar.register(req, mount, secret)
    except Exception as exc:  # noqa: BLE001 - any failure: the secret must not outlive it
        text = exc.message if isinstance(exc, StrongroomError) else type(exc).__name__
        log.error("event=lease_registration_failed path=%s type=%s error=%s", req.path,
                  secret.type, text)
        _revoke_unregistered(backend, secret, req.path)
        raise LeaseRegistrationError() from None


def _revoke_unregistered(backend: LogicalBackend, secret: Secret, path: str) -> None:
    """Undo what the backend created for a secret that will not be handed out."""
    kind = backend.secret_type(secret.type)
    if kind is None:
        log.error("event=lease_revoke_failed path=%s type=%s error=unknown_secret_type", path,
                  secret.type)
        return
    try:
        kind.revoke(secret)
    except Exception as exc:  # noqa: BLE001 - logged; the request fails either way
        log.error("event=lease_revoke_failed path=%s type=%s error=%s", path, secret.type,
                  type(exc).__name__)


def register_login(core: Core, registrar: LeaseRegistrar | None, req: Request,
                   resp: Response, mount: MountEntry | None, login: bool) -> None:
    """The login stage: issue the token ``resp.auth`` describes (if not issued yet).

    ``login``: the request came in on an auth method's login path (one of its
    unauthenticated paths): the token is an orphan whose TTL the mount bounds, and
    gets the default policy unless the method says otherwise (Vault's
    handleLoginRequest). Otherwise only the token store may answer with an Auth (its
    create endpoints computed the TTL, as Vault's token store does itself).
    """
    auth = resp.auth
    if auth is None or auth.issued:
        return
    if not login and (mount is None or mount.type != _TOKEN_MOUNT):
        log.error("event=unexpected_auth_response path=%s", req.path)
        raise StrongroomError("internal error")
    now = core.now()
    if login:
        if mount is not None:
            auth.token_type = resolve_token_type(mount, auth.token_type)
            _map_identity(core, mount, auth)
            # Vault's LoginCreateToken: the mount's path prefixes the display name.
            source = mount.path.removeprefix("auth/").replace("/", "-")
            auth.display_name = (source + auth.display_name).removesuffix("-")
        default, maximum = mount_ttls(core, mount)
        if 0 < auth.max_ttl < maximum:
            maximum = auth.max_ttl
        auth.ttl, warnings = calculate_ttl(
            default_ttl=default, max_ttl=maximum, increment=0, backend_ttl=auth.ttl,
            period=auth.period, explicit_max=auth.explicit_max_ttl, start=int(now),
            now=int(now))
        resp.warnings.extend(warnings)
        auth.policies = sanitize_policies(auth.policies, not auth.no_default_policy)
        if "root" in auth.policies:
            raise BadRequestError("authentication methods cannot create root tokens")
        auth.orphan = True
    entry = _issue(core, req, auth, now)
    if registrar is not None:
        registrar.register_auth(req, mount, entry, auth)


def resolve_token_type(mount: MountEntry, requested: str) -> str:
    """The type of a login's token: the method's (``default`` when it does not say)
    against the mount's tuned ``token_type`` (Vault's router): ``service`` or
    ``batch`` tuned force it; ``default-service`` (the default) and ``default-batch``
    pick the default the method did not override."""
    tuned = (mount.config or {}).get("token_type") or "default-service"
    if tuned in (SERVICE_TYPE, BATCH_TYPE):
        return str(tuned)
    if tuned == "default-batch":
        return SERVICE_TYPE if requested == SERVICE_TYPE else BATCH_TYPE
    return BATCH_TYPE if requested == BATCH_TYPE else SERVICE_TYPE


def _map_identity(core: Core, mount: MountEntry, auth: Auth) -> None:
    """Vault's CreateOrFetchEntity: the alias's entity (created on first login)."""
    if auth.alias is None:
        return
    if not auth.alias.name:
        log.error("event=login_alias_without_name mount=%s", mount.path)
        raise StrongroomError("missing name in alias")
    entity, created = core.identity.fetch_or_create(mount, auth.alias)
    if entity.disabled:
        raise PermissionDeniedError()
    auth.entity_id = entity.id
    auth.entity_created = created


def _issue(core: Core, req: Request, auth: Auth, now: float) -> TokenEntry:
    parent = None if auth.orphan else req.token_entry
    batch = auth.token_type == BATCH_TYPE
    created = float(int(now)) if batch else now
    ttl = auth.ttl
    entry = TokenEntry(
        accessor="" if batch else generate_accessor(),
        policies=auth.policies,
        path=auth.creation_path or req.path,
        creation_time=created,
        display_name=auth.display_name or "token",
        meta=dict(auth.metadata) or None,
        num_uses=auth.num_uses,
        ttl=ttl,
        creation_ttl=ttl,
        explicit_max_ttl=auth.explicit_max_ttl,
        period=auth.period,
        expire_at=created + ttl if ttl else 0.0,
        parent_hash=parent.hash if parent is not None else "",
        renewable=auth.renewable and not batch,
        type=auth.token_type,
        role=auth.role,
        entity_id=auth.entity_id,
        bound_cidrs=list(auth.bound_cidrs),
        internal=dict(auth.internal),
        parent_deadline=0.0 if parent is None else _earliest(parent.expire_at,
                                                            parent.parent_deadline),
    )
    auth.client_token = core.tokens.create(entry, token_id=auth.token_id or None)
    auth.accessor = entry.accessor
    auth.renewable = entry.renewable
    auth.orphan = entry.orphan
    auth.issued = True
    return entry


def _earliest(*deadlines: float) -> float:
    return min((d for d in deadlines if d), default=0.0)
