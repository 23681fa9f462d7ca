"""The pipeline's plug points for later subsystems: the audit broker and the lease registrar.

The core calls these from its stages (core/core.py ``Core.handle``); issue 12 builds
the real implementations (audit devices behind a broker; the expiration manager). The
core starts with :class:`NoAudit` and no registrar, which is Vault with no audit
device enabled and (here) no leased engine mounted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from strongroom.errors import StrongroomError

if TYPE_CHECKING:
    from strongroom.core.logical import Auth, Secret
    from strongroom.core.mounts import MountEntry
    from strongroom.core.request import Request, Response
    from strongroom.core.tokens import TokenEntry

log = logging.getLogger(__name__)
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


def audit_request(audit: AuditBroker, req: Request, mount: MountEntry | None) -> None:
    """The audit-request stage. Fail closed: with devices enabled, a request none
    recorded is refused (500) before anything is done."""
    if audit.enabled() and not audit.log_request(req, mount):
        log.error("event=audit_request_failed path=%s", req.path)
        raise AuditFailedError()


def audit_refusal(audit: AuditBroker, req: Request, mount: MountEntry | None,
                  exc: StrongroomError) -> None:
    """A request refused before it was handled is recorded with its error, then its
    answer (the error, as Vault records it); the refusal stands whether or not a device
    recorded them."""
    if not audit.enabled():
        return
    if not audit.log_request(req, mount, error=exc.message):
        log.error("event=audit_request_failed path=%s", req.path)
    from strongroom.core.request import Response  # noqa: PLC0415 - the core imports us

    answer = Response(data={"error": exc.message} if exc.message else None)
    if not audit.log_response(req, mount, answer, error=exc.message):
        log.error("event=audit_response_failed path=%s", req.path)


def audit_response(audit: AuditBroker, req: Request, mount: MountEntry | None,
                   resp: Response) -> None:
    """The audit-response stage. The request happened; if no enabled device records the
    answer, the client gets a 500 instead of it (Vault's handleCancelableRequest)."""
    if audit.enabled() and not audit.log_response(req, mount, resp):
        log.error("event=audit_response_failed path=%s", req.path)
        raise AuditFailedError()


def audit_failure(audit: AuditBroker, req: Request, mount: MountEntry | None,
                  exc: Exception) -> None:
    """A request that failed once audited is recorded with its error (a bug's text is
    not: devices get Vault's "internal error", as the client does)."""
    if not audit.enabled():
        return
    message = exc.message if isinstance(exc, StrongroomError) else INTERNAL_ERROR
    if not audit.log_response(req, mount, None, error=message):
        log.error("event=audit_response_failed path=%s", req.path)
        raise AuditFailedError() from exc


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
