"""sys/mounts, sys/mounts/<path>[/tune], sys/remount, sys/auth, sys/internal/ui/mounts."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from strongroom.config import ConfigError, parse_duration
from strongroom.core.mounts import MountEntry
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, PermissionDeniedError
from strongroom.framework import Field, FieldData, FieldType, Path

if TYPE_CHECKING:
    from strongroom.core.core import Core

_MOUNT_FIELDS = {
    "path": Field(FieldType.STRING),
    "type": Field(FieldType.STRING),
    "description": Field(FieldType.STRING, ""),
    "config": Field(FieldType.MAP),
    "options": Field(FieldType.MAP),
    "local": Field(FieldType.BOOL, False),
    "seal_wrap": Field(FieldType.BOOL, False),
    "plugin_name": Field(FieldType.STRING),
    "external_entropy_access": Field(FieldType.BOOL, False),
}
# Strings, as in Vault: "" leaves a TTL alone, "system" resets it to the default.
_TUNE_FIELDS = {
    "path": Field(FieldType.STRING),
    "default_lease_ttl": Field(FieldType.STRING),
    "max_lease_ttl": Field(FieldType.STRING),
    "description": Field(FieldType.STRING),
    "options": Field(FieldType.MAP),
}
_TOKEN_AUTH = {
    "token/": {
        "accessor": "auth_token_root", "config": {"default_lease_ttl": 0, "max_lease_ttl": 0,
                                                 "force_no_cache": False,
                                                 "token_type": "default-service"},
        "description": "token based credentials", "external_entropy_access": False,
        "local": False, "options": None, "plugin_version": "", "running_plugin_version": "",
        "running_sha256": "", "seal_wrap": False, "type": "token", "uuid": "",
    }
}


def tune_ttl(name: str, value: str | None) -> int | None:
    """None: leave unchanged; 0: back to the system default; else seconds."""
    if value is None or value == "":
        return None
    if value == "system":
        return 0
    try:
        return parse_duration(value)
    except (ConfigError, ValueError):
        raise BadRequestError(f"unable to parse {name} of {value!r}") from None


def mount_view(entry: MountEntry, core: Core) -> dict[str, Any]:
    cfg = entry.config or {}
    return {
        "accessor": entry.accessor,
        "config": {
            "default_lease_ttl": int(cfg.get("default_lease_ttl", 0)),
            "max_lease_ttl": int(cfg.get("max_lease_ttl", 0)),
            "force_no_cache": False,
        },
        "description": entry.description,
        "external_entropy_access": False,
        "local": entry.local,
        "options": entry.options or None,
        "plugin_version": "",
        "running_plugin_version": "",
        "running_sha256": "",
        "seal_wrap": entry.seal_wrap,
        "type": entry.type,
        "uuid": entry.uuid,
    }


def _system_mounts() -> dict[str, Any]:
    sys_entry = MountEntry(path="sys/", type="system", description="system endpoints",
                           uuid="system", accessor="system_root")
    return {"sys/": sys_entry}


def mount_paths(core: Core) -> list[Path]:
    def list_mounts(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        mounts = {e.path: mount_view(e, core) for e in core.router.entries()}
        mounts.update({p: mount_view(e, core) for p, e in _system_mounts().items()})
        return Response(data=mounts, legacy_top_level=True)

    def read_mount(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        entry = core.mounts.get(m.group("path"))
        if entry is None:
            raise BadRequestError(f"no mount at {m.group('path')!r}")
        return Response(data=mount_view(entry, core), legacy_top_level=True)

    def enable(req: Request, data: FieldData, m: re.Match[str]) -> None:
        type_ = data.get("type") or data.get("plugin_name")
        if not type_:
            raise BadRequestError("backend type must be specified as a string")
        config = data.get("config") or {}
        parsed_config = {k: tune_ttl(k, str(config[k])) or 0
                         for k in ("default_lease_ttl", "max_lease_ttl") if k in config}
        options = {str(k): str(v) for k, v in (data.get("options") or {}).items()}
        core.mounts.enable(m.group("path"), type_, data.get("description"), options,
                           parsed_config, data.get("local"), data.get("seal_wrap"))

    def disable(req: Request, data: FieldData, m: re.Match[str]) -> None:
        core.mounts.disable(m.group("path"))

    def read_tune(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        entry = core.mounts.get(m.group("path"))
        if entry is None:
            raise BadRequestError(f"cannot fetch sysview for path {m.group('path')!r}")
        cfg = entry.config or {}
        return Response(data={
            "description": entry.description,
            "default_lease_ttl": int(cfg.get("default_lease_ttl") or core.default_lease_ttl),
            "max_lease_ttl": int(cfg.get("max_lease_ttl") or core.max_lease_ttl),
            "force_no_cache": False,
            "options": entry.options or None,
        }, legacy_top_level=True)

    def tune(req: Request, data: FieldData, m: re.Match[str]) -> None:
        entry = core.mounts.get(m.group("path"))
        if entry is None:
            raise BadRequestError(f"no mount at {m.group('path')!r}")
        config = dict(entry.config or {})
        for key in ("default_lease_ttl", "max_lease_ttl"):
            ttl = tune_ttl(key, data.get(key))
            if ttl is not None:
                config[key] = ttl
        if config.get("max_lease_ttl") and config.get("default_lease_ttl", 0) > config[
                "max_lease_ttl"]:
            raise BadRequestError("default lease TTL cannot exceed max lease TTL")
        changes: dict[str, Any] = {"config": config}
        if data.has("description"):
            changes["description"] = data.get("description")
        if data.has("options"):
            options = dict(entry.options)
            new = {str(k): str(v) for k, v in data.get("options").items()}
            if entry.type == "kv" and options.get("version") == "2" and new.get(
                    "version") == "1":
                raise BadRequestError("cannot downgrade mount from KV version 2 to 1")
            options.update(new)
            changes["options"] = options
        core.mounts.update(m.group("path"), **changes)

    def remount(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        source, target = data.get("from"), data.get("to")
        if not source or not target:
            raise BadRequestError("both 'from' and 'to' path must be specified as strings")
        core.mounts.remount(source, target)
        return Response(data={"migration_id": str(uuid.uuid4())}, legacy_top_level=True)

    def list_auth(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return Response(data=dict(_TOKEN_AUTH), legacy_top_level=True)

    def ui_mounts(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        path = m.group("path") or ""
        if not path:
            secret = {e.path: mount_view(e, core) for e in core.router.entries()}
            return Response(data={"secret": secret, "auth": dict(_TOKEN_AUTH)})
        match = core.router.match(path)
        if match is None:
            raise BadRequestError(f"preflight capability check returned 403, please ensure "
                                  f"client's policies grant access to path \"{path}/\"")
        entry = match[0]
        # Unauthenticated in Vault, but only answers for mounts the token can use.
        if req.token_entry is None:
            raise PermissionDeniedError()
        acl = core.policies.acl(tuple(sorted(req.token_entry.policies)))
        if acl.capabilities(path) == ["deny"] and acl.capabilities(entry.path) == ["deny"]:
            raise PermissionDeniedError()
        return Response(data={**mount_view(entry, core), "path": entry.path})

    return [
        Path("mounts/?", {Operation.READ: list_mounts}),
        Path("mounts/(?P<path>.+?)/tune",
             {Operation.READ: read_tune, Operation.UPDATE: tune}, _TUNE_FIELDS),
        Path("mounts/(?P<path>.+)",
             {Operation.READ: read_mount, Operation.UPDATE: enable, Operation.DELETE: disable},
             _MOUNT_FIELDS),
        Path("(?:remount|mounts/remount)", {Operation.UPDATE: remount},
             {"from": Field(FieldType.STRING), "to": Field(FieldType.STRING)}),
        Path("auth/?", {Operation.READ: list_auth}),
        Path("internal/ui/mounts/?(?P<path>.*)", {Operation.READ: ui_mounts},
             {"path": Field(FieldType.STRING)}),
    ]

