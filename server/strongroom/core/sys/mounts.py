"""sys/mounts, sys/mounts/<path>[/tune], sys/remount (sys/auth is in sys/auth.py)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from strongroom import __version__
from strongroom.config import ConfigError, parse_duration
from strongroom.core.mounts import RESERVED_PREFIXES, MountEntry, normalize_mount_path
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path
from strongroom.framework.gotypes import within_duration_range

if TYPE_CHECKING:
    from strongroom.core.core import Core

MOUNT_FIELDS = {
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
TUNE_FIELDS = {
    "path": Field(FieldType.STRING),
    "default_lease_ttl": Field(FieldType.STRING),
    "max_lease_ttl": Field(FieldType.STRING),
    "description": Field(FieldType.STRING),
    "options": Field(FieldType.MAP),
    "listing_visibility": Field(FieldType.STRING),
    "token_type": Field(FieldType.STRING),
    "audit_non_hmac_request_keys": Field(FieldType.LIST),
    "audit_non_hmac_response_keys": Field(FieldType.LIST),
}
# Keys of request/response data the audit log keeps in clear for this mount (issue 12:
# audit/broker.py reads them from the mount's config).
AUDIT_KEY_FIELDS = ("audit_non_hmac_request_keys", "audit_non_hmac_response_keys")
# Vault's handleMount: "kv-v1"/"kv-v2" (`vault secrets enable kv-v2`) are stored as kv
# with that version; any type but kv refuses a version option. "generic" is not one of
# these: Vault keeps it as the mount's type (accessor generic_..., no deprecation_status)
# and only builds a kv backend for it (registry.py), so a client reads back what it sent.
_KV_VERSION_ALIASES = {"kv-v1": "1", "kv-v2": "2"}
# Types outside Vault's builtin registry: no deprecation_status in a mount's view.
_UNREGISTERED_TYPES = frozenset({"generic"})


def option_strings(options: dict[Any, Any]) -> dict[str, str]:
    """``options`` as Vault's map[string]string decodes it (mapstructure, weakly typed):
    null is "", a boolean "1" or "0", a number its text; a map or a list is refused
    with a 400 (Python's ``str`` stored "{'b': 1}", "None" and "True": a kv mount
    enabled with {"version": null} answered 204, then refused every request)."""
    converted = {}
    for key, value in options.items():
        if value is None:
            text = ""
        elif isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, (str, int, float)):
            text = str(value)
        else:
            raise BadRequestError(
                "Field validation failed: error converting input for field \"options\": "
                "decoding failed due to the following error(s):\n\n'[0]' expected type "
                "'string', got unconvertible type 'map[string]interface {}'")  # OpenBao's,
                # whatever the value's own type
        converted[str(key)] = text
    return converted


def given_options(data: FieldData) -> dict[str, str] | None:
    """An enable request's ``options``: a map of strings, or None when given as null
    (Vault lists such a mount's options as null, an absent one's as ``{}``)."""
    if "options" in data.raw and data.raw["options"] is None:
        return None
    return option_strings(data.get("options") or {})


def tune_ttl(name: str, value: str | None) -> int | None:
    """None: leave unchanged; 0: back to the system default; else seconds."""
    if value is None or value == "":
        return None
    if value == "system":
        return 0
    try:
        return within_duration_range(parse_duration(value))  # else 500s later (issue #9)
    except (ConfigError, ValueError):
        raise BadRequestError(f"unable to parse {name} of {value!r}") from None


# Vault's ListingVisibilityType: "" (default), "hidden", or "unauth", which lists
# the mount (type, description, options) to callers without a token.
_LISTING_VISIBILITIES = ("", "unauth", "hidden")


def listing_visibility(value: Any) -> str:
    if value not in _LISTING_VISIBILITIES:
        raise BadRequestError(f"invalid listing_visibility {value}")
    return str(value)


# Mounts that are part of the server itself rather than a pluggable engine.
_CORE_TYPES = ("system", "identity", "cubbyhole", "token")
_NO_OPTIONS_TYPES = ("system", "identity", "cubbyhole")
_PASSTHROUGH = {"system": ["Accept"], "identity": ["Authorization"]}


def mount_view(entry: MountEntry, core: Core) -> dict[str, Any]:
    cfg = entry.config or {}
    config: dict[str, Any] = {
        "default_lease_ttl": int(cfg.get("default_lease_ttl", 0)),
        "max_lease_ttl": int(cfg.get("max_lease_ttl", 0)),
        "force_no_cache": False,
    }
    if entry.type in _PASSTHROUGH:
        config["passthrough_request_headers"] = _PASSTHROUGH[entry.type]
    if cfg.get("listing_visibility"):
        config["listing_visibility"] = cfg["listing_visibility"]
    for key in AUDIT_KEY_FIELDS:
        if cfg.get(key):
            config[key] = list(cfg[key])
    view: dict[str, Any] = {
        "accessor": entry.accessor,
        "config": config,
        "description": entry.description,
        "external_entropy_access": False,
        "local": entry.local or entry.type == "cubbyhole",
        # Vault: the built-in mounts have no options (null); an enabled one has a map,
        # empty when none was given.
        "options": (None if entry.type in _NO_OPTIONS_TYPES or entry.options is None
                    else dict(entry.options)),
        "plugin_version": "",
        "running_plugin_version": f"v{__version__}+builtin.strongroom",
        "running_sha256": "",
        "seal_wrap": entry.seal_wrap or entry.type == "system",
        "type": entry.type,
        "uuid": entry.uuid,
    }
    if entry.type not in _CORE_TYPES and entry.type not in _UNREGISTERED_TYPES:
        view["deprecation_status"] = "supported"
    return view


def tune_changes(entry: MountEntry, data: FieldData) -> dict[str, Any]:
    """The entry fields a tune request changes (shared by sys/mounts and sys/auth)."""
    config = dict(entry.config or {})
    for key in ("default_lease_ttl", "max_lease_ttl"):
        ttl = tune_ttl(key, data.get(key))
        if ttl is not None:
            config[key] = ttl
    if config.get("max_lease_ttl") and config.get("default_lease_ttl", 0) > config[
            "max_lease_ttl"]:
        raise BadRequestError(
            f"backend max lease TTL of {config['max_lease_ttl']} would be less than "
            f"backend default lease TTL of {config['default_lease_ttl']}")
    if data.has("listing_visibility"):
        config["listing_visibility"] = listing_visibility(data.get("listing_visibility"))
    for key in AUDIT_KEY_FIELDS:
        if data.has(key):
            keys = [str(k) for k in data.get(key) or []]
            if keys:
                config[key] = keys  # as given, [""] included (OpenBao shows it so)
            else:
                config.pop(key, None)
    changes: dict[str, Any] = {"config": config}
    if data.has("description"):
        changes["description"] = data.get("description")
    if data.has("options"):
        new = option_strings(data.get("options") or {})
        if new:  # an empty map changes nothing (Vault)
            changes["options"], upgrade = tuned_options(entry.options, new)
            if upgrade:
                changes["warnings"] = [upgrade]
    return changes


def tuned_options(current: dict[str, str] | None, given: dict[str, str]
                  ) -> tuple[dict[str, str], str]:
    """A tune's options over ``current``, as Vault's handleTuneWriteCommon: a ``version``
    (on any mount type) must be 1 or 2 and never lower than the mount's; an empty value
    deletes its key (never ``version``). Also the warning of a version upgrade ("" when
    none): the caller answers 200 with it instead of 204."""
    options = dict(current or {})
    warning = ""
    if "version" in given:
        mounted = _go_int(options.get("version", ""), "unable to parse mount entry")
        wanted = _go_int(given["version"], "unable to parse options")
        if wanted not in (1, 2):
            raise BadRequestError(f"invalid version provided: {wanted}")
        if mounted > wanted:
            raise BadRequestError(f"cannot downgrade mount from version {mounted}")
        if mounted < wanted:
            warning = (f"Upgrading mount from version {mounted} to version {wanted}. This "
                       "mount will be unavailable for a brief period and will resume "
                       "service shortly.")
    for key, value in given.items():
        if not value and key != "version":
            options.pop(key, None)
        else:
            options[key] = value
    return options, warning


def _go_int(text: str, context: str) -> int:
    """parseutil.ParseInt of an option's text ("" is 0), errors in Go's words."""
    if text == "":
        return 0
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise BadRequestError(f'{context}: strconv.ParseInt: parsing "{text}": invalid syntax')
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise BadRequestError(f'{context}: strconv.ParseInt: parsing "{text}": value out of '
                              "range")
    return value


def tune_view(entry: MountEntry, core: Core) -> dict[str, Any]:
    """A mount's ``.../tune`` answer: the effective TTLs, not the stored zeros."""
    cfg = entry.config or {}
    body: dict[str, Any] = {
        "description": entry.description,
        "default_lease_ttl": int(cfg.get("default_lease_ttl") or core.default_lease_ttl),
        "max_lease_ttl": int(cfg.get("max_lease_ttl") or core.max_lease_ttl),
        "force_no_cache": False,
    }
    if entry.options:
        body["options"] = entry.options
    if cfg.get("listing_visibility"):
        body["listing_visibility"] = cfg["listing_visibility"]
    for key in AUDIT_KEY_FIELDS:
        if cfg.get(key):
            body[key] = list(cfg[key])
    return body


def mount_paths(core: Core) -> list[Path]:
    # sys/auth uses this module's helpers, so it is imported once this one is loaded.
    from strongroom.core.sys.auth import auth_method_paths, auth_view, read_auth_tune, tune_auth

    def list_mounts(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        mounts = {e.path: mount_view(e, core) for e in core.mounts.secrets.entries()}
        return Response(data=mounts, legacy_top_level=True)

    def read_mount(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        path = normalize_mount_path(m.group("path"))
        if path.startswith("auth/") and (auth := core.mounts.auth.get(path[5:])) is not None:
            return Response(data=auth_view(auth, core), legacy_top_level=True)
        entry = core.mounts.secrets.get(path)
        if entry is None:
            raise BadRequestError(f"No secret engine mount at {path}")
        return Response(data=mount_view(entry, core), legacy_top_level=True)

    def enable(req: Request, data: FieldData, m: re.Match[str]) -> None:
        type_ = data.get("type") or data.get("plugin_name")
        if not type_:
            raise BadRequestError("backend type must be specified as a string")
        config = data.get("config") or {}
        parsed_config: dict[str, Any] = {k: tune_ttl(k, str(config[k])) or 0
                                         for k in ("default_lease_ttl", "max_lease_ttl")
                                         if config.get(k) is not None}  # null: absent
        if listing_visibility(config.get("listing_visibility", "")):
            parsed_config["listing_visibility"] = config["listing_visibility"]
        for key in AUDIT_KEY_FIELDS:
            keys = config.get(key)
            if keys:
                parsed_config[key] = [str(k) for k in (
                    keys if isinstance(keys, list) else str(keys).split(","))]
        options = given_options(data)
        path = normalize_mount_path(m.group("path"))
        if path.startswith(RESERVED_PREFIXES):
            raise BadRequestError(f'cannot mount "{path}"')
        if type_ in _KV_VERSION_ALIASES:
            options = {**(options or {}), "version": _KV_VERSION_ALIASES[type_]}
            type_ = "kv"
        elif type_ != "kv" and options and options.get("version"):
            raise BadRequestError(f'secrets engine "{type_}" does not allow setting a version')
        if type_ in _CORE_TYPES:
            raise BadRequestError(f'mount type of "{type_}" is not mountable')
        if type_ == "kv" and (options or {}).get("version", "") not in ("", "1", "2"):
            # Vault's kv factory knows versions 1 and 2 only (and "" for 1).
            raise BadRequestError('nil backend of type "kv" returned from factory')
        core.mounts.secrets.enable(MountEntry(
            path=path, type=type_, description=data.get("description"),
            options=options, config=parsed_config, local=data.get("local"),
            seal_wrap=data.get("seal_wrap")))

    def disable(req: Request, data: FieldData, m: re.Match[str]) -> None:
        path = normalize_mount_path(m.group("path"))
        if path.startswith(RESERVED_PREFIXES):
            raise BadRequestError(f'cannot unmount "{path}"')
        if core.mounts.secrets.get(path) is not None:
            # As Vault's unmount: every lease the mount issued is revoked first (through
            # its backend, still mounted); a revocation failing stops the unmount.
            core.expiration.revoke_prefix(path, sync=True)
        core.mounts.secrets.disable(path)

    # `bao auth tune` sends sys/mounts/auth/<path>/tune: auth/ names the auth table.
    def read_tune(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        path = normalize_mount_path(m.group("path"))
        if path.startswith("auth/"):
            return read_auth_tune(core, path[5:])
        entry = core.mounts.secrets.get(path)
        if entry is None:
            raise BadRequestError(f'cannot fetch sysview for path "{path}"')
        return Response(data=tune_view(entry, core), legacy_top_level=True)

    def tune(req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        path = normalize_mount_path(m.group("path"))
        if path.startswith("auth/"):
            return tune_auth(core, path[5:], data)
        entry = core.mounts.secrets.get(path)
        if entry is None:
            raise BadRequestError(f'tune of path "{path}" failed: no mount entry found')
        if data.has("token_type"):
            raise BadRequestError("'token_type' can only be modified on auth mounts")
        changes = tune_changes(entry, data)
        warnings = changes.pop("warnings", None)
        core.mounts.secrets.update(path, **changes)
        return Response(data=None, warnings=warnings) if warnings else None

    def remount(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        source, target = data.get("from"), data.get("to")
        if not source or not target:
            raise BadRequestError("both 'from' and 'to' path must be specified as strings")
        moved = normalize_mount_path(source)
        if not moved.startswith("auth/") and core.mounts.secrets.get(moved) is not None:
            # As OpenBao's remountSecretsEngine: the leases of the old path are revoked
            # first, while their backend still answers there.
            core.expiration.revoke_prefix(moved, sync=True)
        migration_id = core.mounts.remount(source, target)
        # As OpenBao's remountCredential: what the method issued at its old path is
        # revoked, else those tokens outlive the method's later disable (which revokes
        # its new path only). Done once the move succeeded: a refused move revokes nothing.
        if moved.startswith("auth/"):
            core.expiration.revoke_prefix(moved, sync=True)
        return Response(data={"migration_id": migration_id}, legacy_top_level=True,
                        warnings=["Mount move has been queued. Progress will be reported in "
                                  "Strongroom's server log, tagged with the returned "
                                  "migration_id"])

    def remount_status(req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        info = core.mounts.migration(m.group("id"))
        if info is None:
            return None
        return Response(data={"migration_id": m.group("id"), "migration_info": info})

    return [
        Path("mounts/?", {Operation.READ: list_mounts}),
        Path("mounts/(?P<path>.+?)/tune",
             {Operation.READ: read_tune, Operation.UPDATE: tune}, TUNE_FIELDS),
        Path("mounts/(?P<path>.+)",
             {Operation.READ: read_mount, Operation.UPDATE: enable, Operation.DELETE: disable},
             MOUNT_FIELDS),
        Path("(?:remount|mounts/remount)", {Operation.UPDATE: remount},
             {"from": Field(FieldType.STRING), "to": Field(FieldType.STRING)}),
        Path("remount/status/(?P<id>[^/]+)", {Operation.READ: remount_status}),
        *auth_method_paths(core),
    ]

