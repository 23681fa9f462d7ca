"""The backend contract: what every mount (secrets engine, auth method, ``sys/``) offers
the core, and the typed results it returns.

A backend is mounted at a path; the core's pipeline (core/core.py) authenticates,
resolves the mount, authorizes, audits, then calls ``handle`` with the path relative
to the mount. What comes back is a ``Response`` whose ``secret`` (a leased result) or
``auth`` (a login) the pipeline's later stages act on: the lease stage registers a
``Secret`` with the expiration manager, the login stage turns an ``Auth`` into a token.
The expiration manager later calls the backend back, through the router, with the
secret's type name: ``secret_type(name).renew/revoke``.

Lifecycle (called by the mount table, core/mount_table.py):
- ``initialize()``: once the node is active (never on a standby: it may write);
- ``invalidate(key)``: a storage key under this mount's view changed elsewhere
  (another worker, another node); drop what was cached from it;
- ``periodic()``: run by the node's background owner on the active node (tidy,
  auto-rotate); must be quick or do its work in bounded steps;
- ``cleanup()``: the mount is going away (disabled, moved, reloaded, sealed):
  close pools and connections; the instance is not used again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from strongroom.core.request import Request, Response


@dataclass(frozen=True)
class SpecialPaths:
    """Mount-relative globs (exact, or a prefix when ending in ``*``), as Vault's
    ``PathsSpecial``: served without a token; needing ``sudo``; kept local to a
    cluster (never replicated); stored seal-wrapped."""

    unauthenticated: tuple[str, ...] = ()
    sudo: tuple[str, ...] = ()
    local: tuple[str, ...] = ()
    seal_wrapped: tuple[str, ...] = ()


def special_match(patterns: tuple[str, ...], rel_path: str) -> bool:
    """Whether ``rel_path`` is one of ``patterns`` (Vault's special-path globs: exact,
    or a prefix when the pattern ends in ``*``)."""
    for pattern in patterns:
        if pattern.endswith("*"):
            if rel_path.startswith(pattern[:-1]):
                return True
        elif rel_path == pattern:
            return True
    return False


@dataclass
class Secret:
    """A leased result. ``data`` goes to the client; ``internal`` stays with the lease
    (what ``revoke`` needs, e.g. the database username) and is never returned."""

    type: str
    data: dict[str, Any]
    internal: dict[str, Any] = field(default_factory=dict)
    ttl: int = 0
    max_ttl: int = 0
    renewable: bool = True
    # Filled by the lease stage.
    lease_id: str = ""
    # Set once the lease stage has bounded the TTL (and registered the lease, if any):
    # a result passed on again (an unwrapped response, a renewal) is left alone.
    final: bool = False


# The secret type KV engines answer reads with: Vault reports its TTL (lease_duration)
# but registers no lease for it (request_handling.go: kv mounts "should return the TTL
# but not register for a lease as this provides a massive slowdown").
KV_SECRET = "kv"  # noqa: S105 - a secret type name, not a secret


@dataclass
class Alias:
    """Who logged in, as the auth method names them (Vault's ``logical.Alias``): the
    login stage maps (mount accessor, ``name``) to one identity entity, stable across
    logins. ``name`` is the method's stable principal (a username, an AppRole role_id,
    a certificate's common name); ``metadata`` is stored on the entity alias."""

    name: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Auth:
    """A login's result: what the token will carry. The login stage issues the token
    and fills ``client_token`` and ``accessor``."""

    policies: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    display_name: str = ""
    ttl: int = 0
    max_ttl: int = 0
    explicit_max_ttl: int = 0
    period: int = 0
    num_uses: int = 0
    renewable: bool = True
    no_default_policy: bool = False
    token_type: str = "service"  # noqa: S105 - a token kind, not a secret
    entity_id: str = ""  # filled by the login stage from ``alias``
    entity_created: bool = False  # this login made the entity (audit: entity_created)
    alias: Alias | None = None
    bound_cidrs: list[str] = field(default_factory=list)
    # Kept with the token for renewals (e.g. the role or user that logged in).
    internal: dict[str, Any] = field(default_factory=dict)
    # The token store's own requests (auth/token/create*): a login path's token is always
    # an orphan issued at the request's path; a created one may name these.
    orphan: bool = False
    creation_path: str = ""  # default: the request's path
    role: str = ""  # the token role it was created under
    token_id: str = ""  # a custom token id (the token store checks sudo for it)
    # Filled by the login stage when it issues the token (or by the token store for a
    # renewal, which issues nothing): ``issued`` results are passed on as they are.
    client_token: str = ""
    accessor: str = ""
    issued: bool = False


@dataclass(frozen=True)
class SecretType:
    """How a backend renews and revokes one kind of leased secret (Vault's
    ``framework.Secret``). ``renew`` returns the secret with its new TTL, or None when
    it cannot be renewed; ``revoke`` raises if revocation failed (the expiration
    manager retries with backoff)."""

    name: str
    revoke: Callable[[Secret], None]
    renew: Callable[[Secret, int], Secret | None] | None = None
    default_ttl: int = 0
    max_ttl: int = 0


@runtime_checkable
class LogicalBackend(Protocol):
    """What the core and the mount table need from a mounted backend."""

    @property
    def special_paths(self) -> SpecialPaths: ...

    def handle(self, req: Request, rel_path: str) -> Response | None: ...

    def existence(self, req: Request, rel_path: str) -> bool | None: ...

    def secret_type(self, name: str) -> SecretType | None: ...

    def initialize(self) -> None: ...

    def invalidate(self, key: str) -> None: ...

    def periodic(self) -> None: ...

    def cleanup(self) -> None: ...
