"""sys/leases/* (lookup, renew, revoke, revoke-prefix, revoke-force, tidy) and the
legacy sys/renew, sys/revoke, sys/revoke-prefix, sys/revoke-force.

Shapes, status codes and messages follow OpenBao's logical_system.go: a missing id is
400 ``lease_id must be specified``; an unknown lease is 400 ``invalid lease`` on lookup
and ``lease not found`` on renewal; revoking an unknown lease is a no-op; ``sync=false``
answers 202 and leaves the revocation to the active node's expiry runner.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from typing import TYPE_CHECKING, Any

from strongroom.core.lease_store import LeaseEntry
from strongroom.core.request import Operation, Request, Response
from strongroom.core.token_format import go_time
from strongroom.errors import BadRequestError, NotFoundError
from strongroom.framework import Field, FieldData, FieldType, Path

if TYPE_CHECKING:
    from strongroom.core.core import Core
    from strongroom.core.expiration import ExpirationManager

log = logging.getLogger(__name__)

_LEASE_ID = {"lease_id": Field(FieldType.STRING, "")}
_RENEW = {"lease_id": Field(FieldType.STRING, ""), "url_lease_id": Field(FieldType.STRING, ""),
          "increment": Field(FieldType.DURATION, 0)}
_REVOKE = {"lease_id": Field(FieldType.STRING, ""), "url_lease_id": Field(FieldType.STRING, ""),
           "sync": Field(FieldType.BOOL, True)}
_PREFIX = {"prefix": Field(FieldType.STRING, ""), "sync": Field(FieldType.BOOL, True)}
_MISSING_ID = "lease_id must be specified"
TIDY_STARTED = ("Tidy operation successfully started. Any information from the operation "
                "will be printed to Strongroom's server logs.")


def lease_lookup_data(entry: LeaseEntry, lease_id: str, now: float,
                      renewable: bool) -> dict[str, Any]:
    """sys/leases/lookup's data block (OpenBao's handleLeaseLookup)."""
    data: dict[str, Any] = {
        "id": lease_id,
        "issue_time": go_time(entry.issue_time),
        "expire_time": None,
        "last_renewal": None,
        "ttl": 0,
        "path": entry.path,
        "renewable": renewable,
    }
    if entry.revoke_error:
        data["revoke_error"] = entry.revoke_error
    if entry.last_renewal:
        data["last_renewal"] = go_time(entry.last_renewal)
    if entry.expire_time:
        data["expire_time"] = go_time(entry.expire_time)
        # Vault: ExpireTime - now rounded to the second; negative once overdue.
        data["ttl"] = int(entry.expire_time - math.floor(now + 0.5))
    return data


def lease_paths(core: Core) -> list[Path]:
    manager: ExpirationManager = core.expiration

    def lookup(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        lease_id = str(data.get("lease_id") or "")
        if not lease_id:
            raise BadRequestError(_MISSING_ID)
        entry = manager.get(lease_id)
        if entry is None:
            raise BadRequestError("invalid lease")
        now = core.now()
        renewable = not manager.renewable(entry, now)
        return Response(data=lease_lookup_data(entry, lease_id, now, renewable))

    def lookup_list(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        prefix = m.group("prefix") or ""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        try:
            keys = manager.store.children(prefix)
        except BadRequestError:
            keys = []  # a malformed prefix names no lease
        if not keys:
            raise NotFoundError("")
        return Response(data={"keys": keys})

    def renew(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        lease_id = _lease_id(data)
        if not lease_id:
            raise BadRequestError(_MISSING_ID)
        return manager.renew(lease_id, int(data.get("increment") or 0))

    def revoke(req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        lease_id = _lease_id(data)
        if not lease_id:
            raise BadRequestError(_MISSING_ID)
        if data.get("sync"):
            manager.revoke(lease_id)
            return None
        manager.revoke_lazy(lease_id)
        return Response(status=202)

    def revoke_prefix(req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        sync = bool(data.get("sync"))
        manager.revoke_prefix(m.group("prefix"), force=False, sync=sync)
        return None if sync else Response(status=202)

    def revoke_force(req: Request, data: FieldData, m: re.Match[str]) -> None:
        manager.revoke_prefix(m.group("prefix"), force=True, sync=True)

    def tidy(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        # As Vault: started in the background, reported in the server's log.
        threading.Thread(target=_tidy, args=(manager,), name="lease-tidy", daemon=True).start()
        return Response(warnings=[TIDY_STARTED], status=202)

    update = Operation.UPDATE
    return [
        Path("leases/lookup", {update: lookup}, _LEASE_ID),
        Path("leases/lookup/(?P<prefix>.*)", {Operation.LIST: lookup_list},
             {"prefix": Field(FieldType.STRING, "")}),
        Path("(?:leases/)?renew(?:/(?P<url_lease_id>.+))?", {update: renew}, _RENEW),
        Path("(?:leases/)?revoke(?:/(?P<url_lease_id>.+))?", {update: revoke}, _REVOKE),
        Path("(?:leases/)?revoke-prefix/(?P<prefix>.+)", {update: revoke_prefix}, _PREFIX),
        Path("(?:leases/)?revoke-force/(?P<prefix>.+)", {update: revoke_force},
             {"prefix": Field(FieldType.STRING, "")}),
        Path("leases/tidy", {update: tidy}),
    ]


def _lease_id(data: FieldData) -> str:
    """The lease named by the URL (``renew/<id>``, ``revoke/<id>``) or the body.

    The ACL decided on the URL: a body ``lease_id`` naming another lease must not
    redirect a grant scoped by path (Vault takes the body's first; a request that names
    two different leases is refused here instead)."""
    body = str(data.get("lease_id") or "")
    url = str(data.get("url_lease_id") or "")
    if url and body and body != url:
        raise BadRequestError("lease_id in the request body does not match the lease id "
                              "in the URL")
    return url or body


def _tidy(manager: ExpirationManager) -> None:
    try:
        counts = manager.tidy()
    except Exception as exc:  # noqa: BLE001 - logged; a tidy is best effort
        log.error("event=lease_tidy_failed error=%s", type(exc).__name__)
        return
    log.info("event=lease_tidy %s", " ".join(f"{k}={v}" for k, v in counts.items()))
