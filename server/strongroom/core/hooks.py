"""The pipeline's plug points for later subsystems: the audit broker and the lease registrar.

The core calls these from its stages (core/core.py ``Core.handle``); issue 12 builds
the real implementations (audit devices behind a broker; the expiration manager). The
core starts with :class:`NoAudit` and no registrar, which is Vault with no audit
device enabled and (here) no leased engine mounted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from strongroom.errors import StrongroomError

if TYPE_CHECKING:
    from strongroom.core.logical import Auth, Secret
    from strongroom.core.mounts import MountEntry
    from strongroom.core.request import Request, Response
    from strongroom.core.tokens import TokenEntry

# Vault's ErrInternalError text: what a client sees when auditing or lease registration
# fails (the reason goes to the server log, never to the client).
INTERNAL_ERROR = "internal error"


class AuditFailedError(StrongroomError):
    """Audit devices are enabled and none recorded the entry: the request is refused."""

    status = 500

    def __init__(self) -> None:
        super().__init__(INTERNAL_ERROR)


class LeaseRegistrationError(StrongroomError):
    """A leased secret could not be registered: it was revoked, and the request fails."""

    status = 500

    def __init__(self) -> None:
        super().__init__(INTERNAL_ERROR)


@runtime_checkable
class AuditBroker(Protocol):
    """Fans one entry out to every enabled audit device (Vault's AuditBroker).

    ``log_*`` return whether at least one device recorded the entry. The core fails
    the request closed (500, nothing done) when ``enabled()`` and the request entry
    was not recorded; when the response entry is not recorded the request already
    happened, and the client gets a 500 instead of its answer, as in Vault.
    """

    def enabled(self) -> bool:
        """Whether any audit device is enabled (none: nothing is recorded, as Vault)."""
        ...

    def log_request(self, req: Request, mount: MountEntry | None,
                    error: str | None = None) -> bool:
        """Record the request (``error``: it was refused before it was handled)."""
        ...

    def log_response(self, req: Request, mount: MountEntry | None, resp: Response | None,
                     error: str | None = None) -> bool:
        """Record the answer (``error``: handling it failed with that message)."""
        ...


class NoAudit:
    """No audit device enabled: nothing is recorded and requests proceed."""

    def enabled(self) -> bool:
        return False

    def log_request(self, req: Request, mount: MountEntry | None,
                    error: str | None = None) -> bool:
        return False

    def log_response(self, req: Request, mount: MountEntry | None, resp: Response | None,
                     error: str | None = None) -> bool:
        return False


@runtime_checkable
class LeaseRegistrar(Protocol):
    """What the expiration manager (issue 12) offers the pipeline.

    ``register`` persists a lease for ``secret`` (its TTL already bounded by the
    mount) and returns the lease id, ``<request path>/<id>`` in Vault; it raises if
    the lease could not be stored. ``register_auth`` makes a freshly issued token a
    lease too (Vault's RegisterAuth), so it expires without any request.
    """

    def register(self, req: Request, mount: MountEntry, secret: Secret) -> str: ...

    def register_auth(self, req: Request, mount: MountEntry | None, entry: TokenEntry,
                      auth: Auth) -> None: ...
