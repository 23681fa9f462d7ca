"""``config/<name>`` (connections), ``config/`` (LIST), ``reset/<name>`` and
``rotate-root/<name>``."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path
from strongroom.framework.fields import coerce

from . import statements as sql
from .plugin_base import redact_connection_url
from .plugins import DatabaseError, build, url_has_password
from .store import CONFIG, DatabaseConfig

if TYPE_CHECKING:
    from . import DatabaseBackend

log = logging.getLogger(__name__)
# Fields of the config itself; everything else is the plugin's connection details.
_OWN = ("name", "plugin_name", "plugin_version", "allowed_roles", "verify_connection",
        "root_rotation_statements", "password_policy")
_HIDDEN = ("password", "private_key")  # never read back (Vault deletes them on READ)
_URL_WARNING = ("Password found in connection_url, use a templated url to enable root "
                "rotation and prevent read access to password information.")


def paths(b: DatabaseBackend) -> list[Path]:
    from . import NAME

    name_field = {"name": Field(FieldType.STRING)}
    # Vault's schema: the connection details are not in it, so a response that has
    # warnings anyway also lists them as "unrecognized parameters" (as OpenBao does).
    config_fields = {key: Field(FieldType.ANY) for key in _OWN}

    def exists(req: Request, data: FieldData, m: re.Match[str]) -> bool:
        return b.store.config(m.group("name")) is not None

    def listing(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        keys = b.store.names(CONFIG)
        if not keys:
            return Response(status=404, raw=True, data={"errors": []})
        return Response(data={"keys": keys})

    def read(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        config = b.store.config(m.group("name"))
        if config is None:
            return Response(status=404, raw=True, data={"errors": []})
        details = {k: v for k, v in config.connection_details.items() if k not in _HIDDEN}
        if isinstance(details.get("connection_url"), str):
            details["connection_url"] = redact_connection_url(details["connection_url"])
        return Response(data={
            "plugin_name": config.plugin_name,
            "plugin_version": config.plugin_version,
            "connection_details": details,
            "allowed_roles": config.allowed_roles,
            "root_credentials_rotate_statements": config.root_credentials_rotate_statements,
            "password_policy": config.password_policy,
        })

    def write(req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        return _write(b, req, m.group("name"))

    def delete(req: Request, data: FieldData, m: re.Match[str]) -> None:
        name = m.group("name")
        b.store.storage.delete(CONFIG + name)
        b.replace_plugin(name, None)

    def reset(req: Request, data: FieldData, m: re.Match[str]) -> None:
        # Close this process's connections to it and connect afresh (Vault's reset).
        name = m.group("name")
        b.replace_plugin(name, None)
        plugin = b.plugin(name)
        if b.config(name).verify_connection:
            plugin.verify()

    def rotate_root(req: Request, data: FieldData, m: re.Match[str]) -> None:
        _rotate_root(b, m.group("name"))

    return [
        Path("config/?", {Operation.LIST: listing}),
        Path(f"config/{NAME}", {Operation.READ: read, Operation.UPDATE: write,
                                Operation.CREATE: write, Operation.DELETE: delete},
             config_fields, existence=exists),
        Path(f"reset/{NAME}", {Operation.UPDATE: reset}, name_field),
        Path(f"rotate-root/{NAME}", {Operation.UPDATE: rotate_root}, name_field),
    ]


def _write(b: DatabaseBackend, req: Request, name: str) -> Response | None:
    raw: dict[str, Any] = dict(req.data or {})
    existing = b.store.config(name)
    create = existing is None
    config = existing or DatabaseConfig()
    if "plugin_name" in raw:
        config.plugin_name = coerce("plugin_name", FieldType.STRING, raw["plugin_name"])
    if not config.plugin_name:
        raise BadRequestError("empty plugin name")
    if "plugin_version" in raw:
        config.plugin_version = coerce("plugin_version", FieldType.STRING,
                                       raw["plugin_version"])
    if "allowed_roles" in raw:
        config.allowed_roles = coerce("allowed_roles", FieldType.LIST, raw["allowed_roles"])
    elif create:
        config.allowed_roles = []
    if "root_rotation_statements" in raw:
        config.root_credentials_rotate_statements = sql.parse_list(
            raw["root_rotation_statements"])
    if "password_policy" in raw:
        config.password_policy = coerce("password_policy", FieldType.STRING,
                                        raw["password_policy"])
    verify = coerce("verify_connection", FieldType.BOOL, raw.get("verify_connection", True))
    config.verify_connection = verify
    details = {k: v for k, v in raw.items() if k not in _OWN}
    config.connection_details = details if create else {**config.connection_details,
                                                        **details}
    try:
        plugin = build(config.plugin_name, config.connection_details)
    except DatabaseError as exc:
        raise BadRequestError(f"error creating database object: {exc.message}") from None
    if verify:
        try:
            plugin.verify()
        except DatabaseError as exc:
            plugin.close()
            raise BadRequestError("error creating database object: "
                                  f"{plugin.verify_error_prefix}{exc.message}") from None
    b.replace_plugin(name, plugin)
    b.store.put_config(name, config)
    url = config.connection_details.get("connection_url")
    if isinstance(url, str) and url_has_password(url):
        return Response(data=None, warnings=[_URL_WARNING])
    return None


def _rotate_root(b: DatabaseBackend, name: str) -> None:
    """A new password for the config's own user: set on the server, stored, and every
    connection opened with the old one closed (the old password no longer works)."""
    config = b.config(name)
    username = str(config.connection_details.get("username") or "")
    if not username:
        raise BadRequestError("unable to rotate root credentials: no username in configuration")
    if not str(config.connection_details.get("password") or ""):
        raise BadRequestError("unable to rotate root credentials: no password in configuration")
    password = b.generate_password(config)
    with b.serialized(name):
        plugin = b.plugin(name)
        config = b.config(name)  # as recovered by plugin(), if it had to
        config.pending_root_password = password
        b.store.put_config(name, config)
        try:
            plugin.set_password(username, password, config.root_credentials_rotate_statements)
        except DatabaseError as exc:
            config.pending_root_password = ""
            b.store.put_config(name, config)
            raise DatabaseError(f"failed to update user: {exc.message}") from None
        config.connection_details["password"] = password
        config.pending_root_password = ""
        b.store.put_config(name, config)
        b.replace_plugin(name, None)  # its connections were opened with the old password


def recover_root(b: DatabaseBackend, name: str, config: DatabaseConfig) -> DatabaseConfig:
    """A rotate-root cut short between the server and storage: keep whichever of the
    two passwords the server accepts (the new one first), and forget the other."""
    trial = dict(config.connection_details, password=config.pending_root_password)
    try:
        candidate = build(config.plugin_name, trial)
    except DatabaseError:
        candidate = None
    try:
        if candidate is not None:
            candidate.verify()
            config.connection_details = trial
            log.warning("event=db_root_rotation_recovered config=%s adopted=new", name)
    except DatabaseError:
        log.warning("event=db_root_rotation_recovered config=%s adopted=old", name)
    finally:
        if candidate is not None:
            candidate.close()
    config.pending_root_password = ""
    b.store.put_config(name, config)
    return config
