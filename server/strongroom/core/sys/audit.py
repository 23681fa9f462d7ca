"""sys/audit, sys/audit/<path> and sys/audit-hash/<path>: the audit device table, as
Vault answers it (every path needs sudo: core/system.py's SUDO_PATHS).

Enabling builds the device once in this worker and has it write Vault's test probe
(a file it cannot open, a collector that does not answer: 400, nothing enabled), makes
its salt, then stores the entry; every process of the node then loads the device
from the audit table (core.mounts.audit) and the broker (audit/broker.py) writes to
it. Disabling is recorded by the device being disabled (the request entry goes out
before the table changes), as in Vault.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from strongroom.audit.broker import DeviceBroker
from strongroom.audit.device import AuditDevice
from strongroom.core.mounts import MountEntry, normalize_mount_path
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, NoRouteError
from strongroom.framework import Field, FieldData, FieldType, Path

if TYPE_CHECKING:
    from strongroom.core.core import Core

AUDIT_FIELDS = {
    "path": Field(FieldType.STRING),
    "type": Field(FieldType.STRING, ""),
    "description": Field(FieldType.STRING, ""),
    "options": Field(FieldType.ANY),
    "local": Field(FieldType.BOOL, False),
}
HASH_FIELDS = {"path": Field(FieldType.STRING), "input": Field(FieldType.STRING, "")}


def _options(raw: Any) -> dict[str, str]:
    """Vault's TypeKVPairs: a map of strings, or "k=v" pairs."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return {str(k): v if isinstance(v, str) else _go_text(v) for k, v in raw.items()}
    items = raw if isinstance(raw, list) else str(raw).split(",")
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep:
            raise BadRequestError(f'error converting input for field "options": invalid '
                                  f'key value pair "{item}"')
        out[key.strip()] = value.strip()
    return out


def _go_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _path(raw: str) -> str:
    try:
        return normalize_mount_path(raw)
    except BadRequestError:
        raise BadRequestError("backend path must be specified") from None


def audit_view(entry: MountEntry) -> dict[str, Any]:
    return {"path": entry.path, "type": entry.type, "description": entry.description or "",
            "options": dict(entry.options or {}), "local": bool(entry.local)}


def audit_paths(core: Core) -> list[Path]:
    # core.mounts is built after sys/ (its factory is sys/'s): looked up per request.
    def list_devices(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        table = core.mounts.audit
        return Response(data={e.path: audit_view(e) for e in table.entries()},
                        legacy_top_level=True)

    def enable(req: Request, data: FieldData, m: re.Match[str]) -> None:
        table = core.mounts.audit
        path = _path(m.group("path"))
        for existing in table.entries():
            if existing.path.startswith(path) or path.startswith(existing.path):
                raise BadRequestError("path already in use")
        type_ = data.get("type") or ""
        if not table.can_enable(type_):
            raise BadRequestError(f'unknown backend type: "{type_}"')
        ident = str(uuid.uuid4())
        entry = MountEntry(path=path, type=type_, description=data.get("description") or "",
                           uuid=ident, accessor=f"audit_{type_}_{ident[:8]}",
                           options=_options(data.get("options")),
                           local=bool(data.get("local")))
        device = table.build(entry)
        if not isinstance(device, AuditDevice):
            raise BadRequestError(f'unknown backend type: "{type_}"')
        try:
            device.test()  # BadRequestError: the options, or the device cannot write
            device.salt()  # made now, by the one worker enabling it
        finally:
            device.cleanup()
        table.enable(entry)

    def disable(req: Request, data: FieldData, m: re.Match[str]) -> None:
        table = core.mounts.audit
        path = _path(m.group("path"))
        if table.get(path) is None:
            return  # Vault: disabling a path with nothing enabled succeeds
        table.disable(path)

    def audit_hash(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        value = data.get("input") or ""
        if not value:
            raise BadRequestError('the "input" parameter is empty')
        path = m.group("path").strip("/") + "/"
        broker = core.audit
        if not isinstance(broker, DeviceBroker):
            raise BadRequestError(f'unknown audit backend "{path}"')
        return Response(data={"hash": broker.hash(path, value)})

    def no_list(req: Request, data: FieldData, m: re.Match[str]) -> None:
        # Vault lists devices with GET only; LIST finds no path (a 404, as OpenBao).
        raise NoRouteError("unsupported path")

    return [
        Path("audit/?", {Operation.READ: list_devices, Operation.LIST: no_list}),
        Path("audit-hash/(?P<path>.+)", {Operation.UPDATE: audit_hash}, HASH_FIELDS),
        Path("audit/(?P<path>.+)", {Operation.UPDATE: enable, Operation.DELETE: disable},
             AUDIT_FIELDS),
    ]
