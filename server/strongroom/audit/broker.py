"""The audit broker: every request and every answer goes to every enabled device.

Implements core/hooks.py's ``AuditBroker``. The devices are the mounted backends of
the mount table's ``audit`` table (``core.mounts.audit``), so every worker (and the
owner's Core) has its own instances, reloaded when the table changes anywhere on the
node. A request is recorded if at least one device wrote it; the core refuses it
otherwise (fail closed). The entry is built once per request and rendered by each
device with its own salt and options.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from strongroom.audit.device import AuditDevice
from strongroom.audit.entry import ROOT_NAMESPACE, LogInput
from strongroom.core.request import Operation
from strongroom.errors import BadRequestError

if TYPE_CHECKING:
    from strongroom.core.core import Core
    from strongroom.core.logical import Auth
    from strongroom.core.mounts import MountEntry
    from strongroom.core.request import Request, Response

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4096)
def _issue_time(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _str_list(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


class DeviceBroker:
    """Fans entries out to the devices of ``core.mounts.audit``."""

    def __init__(self, core: Core) -> None:
        self._core = core

    # -- the devices ------------------------------------------------------------------

    def devices(self) -> list[tuple[MountEntry, AuditDevice | None]]:
        # A type this build does not ship stays enabled and records nothing.
        return [(entry, backend if isinstance(backend, AuditDevice) else None)
                for entry, backend in self._core.mounts.audit.mounted()]

    def enabled(self) -> bool:
        return bool(self._core.mounts.audit.entries())

    def hash(self, path: str, value: str) -> str:
        """``sys/audit-hash/<path>``: ``value`` HMAC'd with that device's salt."""
        device = self._core.mounts.audit.backend(path)
        if not isinstance(device, AuditDevice):
            raise BadRequestError(f'unknown audit backend "{path}"')
        return device.hash(value)

    # -- core/hooks.py's AuditBroker ----------------------------------------------------

    def log_request(self, req: Request, mount: MountEntry | None,
                    error: str | None = None) -> bool:
        request = self._request(req, mount)
        if not _routed_before_audit(req):
            request["mount_accessor"] = ""
        return self._fan_out(LogInput(
            kind="request", auth=self._auth(req), request=request,
            error=error or "", non_hmac_request_keys=self._keys(mount, "request")))

    def log_response(self, req: Request, mount: MountEntry | None, resp: Response | None,
                     error: str | None = None) -> bool:
        request = self._request(req, mount)
        if resp is not None and error is not None and not _routed_before_audit(req):
            # A refusal (core/hooks.py audit_refusal: an answer and an error): the
            # request never reached its mount.
            request["mount_accessor"] = ""
        response: dict[str, Any] = {k: request[k] for k in
                                    ("mount_point", "mount_type", "mount_accessor")}
        if resp is not None:
            response.update({
                "auth": _response_auth(resp.auth) if resp.auth is not None else None,
                "secret": {"lease_id": resp.lease_id} if resp.secret is not None else None,
                "data": resp.data,
                "warnings": resp.warnings,
                "wrap_info": resp.wrap_info,
            })
        return self._fan_out(LogInput(
            kind="response", auth=self._auth(req), request=request, response=response,
            error=error or "", list_op=req.operation is Operation.LIST,
            non_hmac_request_keys=self._keys(mount, "request"),
            non_hmac_response_keys=self._keys(mount, "response")))

    def _fan_out(self, inp: LogInput) -> bool:
        recorded = False
        for entry, device in self.devices():
            if device is None:
                log.error("event=audit_device_failed path=%s type=%s error=unknown_type",
                          entry.path, entry.type)
                continue
            if device.log(inp):
                recorded = True
        return recorded

    # -- the entry's blocks --------------------------------------------------------------

    @staticmethod
    def _auth(req: Request) -> dict[str, Any]:
        entry = req.token_entry
        if entry is None:
            return {"token_type": "default"}
        return {
            "client_token": req.token or "",
            "accessor": entry.accessor,
            "display_name": entry.display_name,
            "policies": list(entry.policies),
            "token_policies": list(entry.policies),
            "metadata": entry.meta,
            "entity_id": entry.entity_id,
            "remaining_uses": req.client_token_remaining_uses,
            "token_type": entry.type,
            "token_ttl": entry.ttl,
            "token_issue_time": (_issue_time(int(entry.creation_time))
                                 if entry.creation_time else ""),
        }

    def _request(self, req: Request, mount: MountEntry | None) -> dict[str, Any]:
        mount_point = ""
        match = self._core.router.match(req.path)
        if match is not None:
            routed, _backend, rel = match
            mount_point = req.path[:len(req.path) - len(rel)] if rel else req.path
            if not mount_point.endswith("/"):
                mount_point += "/"
            mount = mount or routed
        entry = req.token_entry
        return {
            "id": req.request_id,
            "operation": req.operation.value,
            "mount_point": mount_point,
            "mount_type": mount.type if mount is not None else "",
            "mount_accessor": mount.accessor if mount is not None else "",
            "client_token": req.token or "",
            "client_token_accessor": entry.accessor if entry is not None else "",
            "namespace": ROOT_NAMESPACE,
            "path": req.path,
            "data": req.data or None,
            "remote_address": req.remote_addr,
            "remote_port": req.remote_port,
            "wrap_ttl": req.wrap_ttl,
        }

    @staticmethod
    def _keys(mount: MountEntry | None, which: str) -> tuple[str, ...]:
        if mount is None or not mount.config:
            return ()
        return _str_list(mount.config.get(f"audit_non_hmac_{which}_keys"))


def _routed_before_audit(req: Request) -> bool:
    """Whether Vault names the mount's accessor in the request entry: it is set on the
    request when the router first handles it, which for a write is the existence check
    before the request is audited, and for anything else the handling after it."""
    return req.operation in (Operation.CREATE, Operation.UPDATE)


def _response_auth(auth: Auth) -> dict[str, Any]:
    return {
        "client_token": auth.client_token,
        "accessor": auth.accessor,
        "display_name": auth.display_name,
        "policies": list(auth.policies),
        "token_policies": list(auth.policies),
        "metadata": auth.metadata,
        "num_uses": auth.num_uses,
        "entity_id": auth.entity_id,
        "entity_created": auth.entity_created,
        "token_type": auth.token_type,
        "token_ttl": auth.ttl,
    }
