"""sys/auth, sys/auth/<path> and sys/auth/<path>/tune: the auth method table, as Vault
answers it. Methods plug in by type (strongroom.registry.AUTH_METHODS) and are served
at ``auth/<path>``; ``token/`` is the core's own and can be neither enabled again nor
disabled."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from strongroom.config import ConfigError, parse_duration
from strongroom.core.mounts import MountEntry, normalize_mount_path
from strongroom.core.request import Operation, Request, Response
from strongroom.core.sys.mounts import (
    AUDIT_KEY_FIELDS,
    MOUNT_FIELDS,
    TUNE_FIELDS,
    given_options,
    listing_visibility,
    mount_view,
    tune_changes,
    tune_view,
)
from strongroom.errors import BadRequestError
from strongroom.framework import FieldData, Path
from strongroom.framework.gotypes import within_duration_range

if TYPE_CHECKING:
    from strongroom.core.core import Core

TOKEN_TYPES = ("default-service", "default-batch", "service", "batch")
DEFAULT_TOKEN_TYPE = "default-service"  # noqa: S105 - a token kind, not a secret


def auth_view(entry: MountEntry, core: Core) -> dict[str, Any]:
    """An auth mount as ``sys/auth`` lists it: a mount view plus its token type."""
    view = mount_view(entry, core)
    view["config"]["token_type"] = (entry.config or {}).get("token_type", DEFAULT_TOKEN_TYPE)
    # Vault shows the token method's options as null, every other method's as a map.
    view["options"] = (None if entry.type == "token" or entry.options is None
                       else dict(entry.options))
    return view


def _enable_ttl(label: str, value: Any) -> int:
    """Vault's parse of an enable request's config TTL (a string; "system" is 0)."""
    if value is None or value in ("", "system"):
        return 0
    try:
        return within_duration_range(parse_duration(str(value)))
    except (ConfigError, ValueError):
        raise BadRequestError(f"unable to parse {label} TTL of {value}: time: invalid "
                              f'duration "{value}"') from None


def _enable_config(config: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    default_ttl = _enable_ttl("default", config.get("default_lease_ttl"))
    max_ttl = _enable_ttl("max", config.get("max_lease_ttl"))
    if max_ttl and default_ttl > max_ttl:
        raise BadRequestError("given default lease TTL greater than given max lease TTL")
    if default_ttl:
        parsed["default_lease_ttl"] = default_ttl
    if max_ttl:
        parsed["max_lease_ttl"] = max_ttl
    token_type = config.get("token_type") or DEFAULT_TOKEN_TYPE
    if token_type not in TOKEN_TYPES:
        raise BadRequestError("invalid value for 'token_type'")
    if token_type != DEFAULT_TOKEN_TYPE:
        parsed["token_type"] = token_type
    # As a secrets mount's enable (and OpenBao's `bao auth enable -audit-non-hmac-...`).
    for key in AUDIT_KEY_FIELDS:
        keys = config.get(key)
        if keys:
            parsed[key] = [str(k) for k in (
                keys if isinstance(keys, list) else str(keys).split(","))]
    return parsed


def auth_method_paths(core: Core) -> list[Path]:
    def list_auth(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return Response(data={e.path: auth_view(e, core) for e in core.mounts.auth.entries()},
                        legacy_top_level=True)

    def read(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        path = normalize_mount_path(m.group("path"))
        entry = core.mounts.auth.get(path)
        if entry is None:
            raise BadRequestError(f"No auth engine at {path}")
        return Response(data=auth_view(entry, core), legacy_top_level=True)

    def enable(req: Request, data: FieldData, m: re.Match[str]) -> None:
        config = data.get("config") or {}
        parsed = _enable_config(config)
        type_ = data.get("type") or ""
        if type_ == "plugin":
            type_ = config.get("plugin_name") or data.get("plugin_name") or ""
            if not type_:
                raise BadRequestError("plugin_name must be provided for plugin backend")
        if not type_:
            raise BadRequestError("backend type must be specified as a string")
        options = given_options(data)
        if options and options.get("version"):
            raise BadRequestError(f'auth method "{type_}" does not allow setting a version')
        visibility = config.get("listing_visibility", "")
        if visibility:
            parsed["listing_visibility"] = listing_visibility(visibility)
        if type_ == "token":
            raise BadRequestError("token credential backend cannot be instantiated")
        ident = str(uuid.uuid4())
        # As OpenBao: a path in use is reported before a type it does not know.
        core.mounts.auth.enable(MountEntry(
            path=normalize_mount_path(m.group("path")), type=type_, uuid=ident,
            accessor=f"auth_{type_}_{ident[:8]}", description=data.get("description"),
            options=options, config=parsed, local=data.get("local"),
            seal_wrap=data.get("seal_wrap")))

    def disable(req: Request, data: FieldData, m: re.Match[str]) -> None:
        path = normalize_mount_path(m.group("path"))
        if path == "token/":
            raise BadRequestError("token credential backend cannot be disabled")
        if core.mounts.auth.get(path) is None:
            return  # Vault: disabling a path with nothing mounted succeeds
        # As Vault: what the method issued goes first, then the mount and its data;
        # then once more: a worker still routing by the old table may have logged
        # someone in meanwhile, and nothing would ever revoke that token.
        # (Tokens are leases under their creation path: only what matches is read.)
        core.expiration.revoke_prefix("auth/" + path, sync=True)
        core.mounts.auth.disable(path)
        core.expiration.revoke_prefix("auth/" + path, sync=True)

    def read_tune(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return read_auth_tune(core, m.group("path"))

    def tune(req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        return tune_auth(core, m.group("path"), data)

    return [
        Path("auth/?", {Operation.READ: list_auth}),
        Path("auth/(?P<path>.+?)/tune",
             {Operation.READ: read_tune, Operation.UPDATE: tune}, TUNE_FIELDS),
        Path("auth/(?P<path>.+)",
             {Operation.READ: read, Operation.UPDATE: enable, Operation.DELETE: disable},
             MOUNT_FIELDS),
    ]


def read_auth_tune(core: Core, path: str) -> Response:
    """``sys/auth/<path>/tune`` (and ``sys/mounts/auth/<path>/tune``, which the CLI uses)."""
    path = normalize_mount_path(path)
    entry = core.mounts.auth.get(path)
    if entry is None:
        raise BadRequestError(f'cannot fetch sysview for path "auth/{path}"')
    body = tune_view(entry, core)
    body["token_type"] = (entry.config or {}).get("token_type", DEFAULT_TOKEN_TYPE)
    return Response(data=body, legacy_top_level=True)


def tune_auth(core: Core, path: str, data: FieldData) -> Response | None:
    path = normalize_mount_path(path)
    entry = core.mounts.auth.get(path)
    if entry is None:
        raise BadRequestError(f'tune of path "auth/{path}" failed: no mount entry found')
    if data.has("token_type") and entry.type == "token":
        raise BadRequestError("'token_type' cannot be set for 'token' or 'ns_token' auth "
                              "mounts")
    if entry.type == "token":
        # The token method's TTLs come from the server's config: only its listing
        # visibility is tunable; refuse the rest rather than answer 204 unchanged.
        # (`bao auth tune` sends every TTL, empty when not given: empty changes nothing.)
        others = [k for k in TUNE_FIELDS if k not in ("path", "listing_visibility")
                  and data.has(k) and data.get(k) not in (None, "", {})]
        if others:
            raise BadRequestError(f"tuning {', '.join(sorted(others))} of the token auth "
                                  "method is not supported")
    changes = tune_changes(entry, data)
    if data.has("token_type"):
        token_type = data.get("token_type")
        if token_type not in TOKEN_TYPES:
            raise BadRequestError("invalid value for 'token_type'")
        changes["config"]["token_type"] = token_type
    warnings = changes.pop("warnings", None)
    core.mounts.auth.update(path, **changes)
    return Response(data=None, warnings=warnings) if warnings else None
