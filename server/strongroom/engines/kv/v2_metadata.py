"""KV v2 key metadata (metadata/) and the mount-wide settings (config)."""

from __future__ import annotations

import re
from typing import Any

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path

from .common import (
    check_path,
    check_prefix,
    format_time,
    is_leaf,
    key_lock,
    list_response,
    not_found,
)
from .merge_patch import merge_patch
from .parsing import (
    custom_metadata,
    duration_seconds,
    format_duration,
    go_int,
    validate_custom_metadata,
)
from .v2_store import DVA_DISABLED, KeyMetadata, V2Store, wrap_uint32

_SETTINGS = {
    "max_versions": Field(FieldType.ANY),
    "cas_required": Field(FieldType.BOOL),
    "delete_version_after": Field(FieldType.ANY),
}
METADATA_FIELDS = {
    "path": Field(FieldType.ANY),
    **_SETTINGS,
    "custom_metadata": Field(FieldType.MAP),
    "after": Field(FieldType.STRING, ""),
    "limit": Field(FieldType.ANY),
}
CAS_IGNORED = ('"cas_required" set to false, but is mandated by backend config. '
               "This value will be ignored.")
_CONFIG_LOCK_KEY = "\x00config"


class MetadataPaths:
    def __init__(self, store: V2Store, mount_uuid: str) -> None:
        self._store = store
        self._uuid = mount_uuid

    def paths(self) -> list[Path]:
        meta_ops = {
            Operation.READ: self._read,
            Operation.UPDATE: self._write,
            Operation.PATCH: self._patch,
            Operation.DELETE: self._delete,
            Operation.LIST: self._list,
        }
        config_ops = {Operation.READ: self._read_config, Operation.UPDATE: self._write_config}
        return [
            Path("config", config_ops, _SETTINGS),
            Path("metadata/(?P<path>.*)", meta_ops, METADATA_FIELDS, existence=self._exists),
        ]

    def _exists(self, req: Request, data: FieldData, m: re.Match[str]) -> bool:
        path = m.group("path")
        return is_leaf(path) and self._store.get_meta(check_path(path)) is not None

    # -- metadata/<path> ------------------------------------------------------

    def _read(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        path = m.group("path")
        meta = self._store.get_meta(check_path(path)) if is_leaf(path) else None
        if meta is None:
            return not_found()
        return Response(data={
            "cas_required": meta.cas_required,
            "created_time": format_time(meta.created_time),
            "current_version": meta.current_version,
            "custom_metadata": meta.custom_metadata or None,
            "delete_version_after": format_duration(meta.delete_version_after),
            "max_versions": meta.max_versions,
            "oldest_version": meta.oldest_version,
            "updated_time": format_time(meta.updated_time),
            "versions": {str(n): meta.versions[n].view() for n in sorted(meta.versions)},
        })

    def _cas_warning(self, data: FieldData) -> Response | None:
        if data.has("cas_required") and not data.get("cas_required"):
            if self._store.config().cas_required:
                return Response(warnings=[CAS_IGNORED])
        return None

    def _write(self, req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        path = m.group("path")
        if not path:
            raise BadRequestError("missing path")
        if not any(data.has(name) for name in (*_SETTINGS, "custom_metadata")):
            return None
        settings = _parse_settings(data, allow_negative_dva=False)
        custom = None
        if data.has("custom_metadata"):
            custom = custom_metadata(data.get("custom_metadata"))
            validate_custom_metadata(custom)
        check_path(path)
        resp = self._cas_warning(data)
        with key_lock(self._uuid, path):
            meta = self._store.get_meta(path)
            if meta is None:
                now = self._store.now()
                meta = KeyMetadata(key=path, created_time=now, updated_time=now)
            for name, value in settings.items():
                setattr(meta, name, value)
            if custom is not None:
                meta.custom_metadata = custom
            self._store.put_meta(meta)
        return resp

    def _patch(self, req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        """JSON merge patch of the settings: null resets max_versions, cas_required and
        custom_metadata, is ignored for delete_version_after (as in Vault)."""
        path = m.group("path")
        if not path:
            raise BadRequestError("missing path")
        raw = req.data
        settings = _parse_settings(data, allow_negative_dva=False)
        for name, zero in (("max_versions", 0), ("cas_required", False)):
            if name in raw and raw[name] is None:
                settings[name] = zero
        patch: dict[str, Any] | None = None
        if "custom_metadata" in raw:
            patch = custom_metadata(raw["custom_metadata"] or {}, drop_nulls=True)
            validate_custom_metadata({k: v for k, v in patch.items() if v is not None})
        check_path(path)
        with key_lock(self._uuid, path):
            meta = self._store.get_meta(path)
            if meta is None:
                return not_found()
            resp = self._cas_warning(data)
            for name, value in settings.items():
                setattr(meta, name, value)
            if patch is not None:
                merged = {} if raw["custom_metadata"] is None else merge_patch(
                    meta.custom_metadata, patch)
                validate_custom_metadata(merged)
                meta.custom_metadata = merged
            self._store.put_meta(meta)
        return resp

    def _delete(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        """Remove every version and the metadata: the key is gone for good."""
        path = m.group("path")
        if not is_leaf(path):
            return
        with key_lock(self._uuid, check_path(path)):
            meta = self._store.get_meta(path)
            if meta is not None:
                self._store.delete_all(meta)

    def _list(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        """OpenBao's paged LIST: keys after ``after`` (need not exist), at most ``limit``
        (<= 0: all). A page costs in proportion to its size (storage ListPage)."""
        prefix = check_prefix(m.group("path"))
        try:
            limit = go_int("limit", data.get("limit")) if data.has("limit") else 0
        except BadRequestError as exc:  # checked up front by OpenBao's framework
            raise BadRequestError(f"Field validation failed: {exc}") from None
        return list_response(self._store.list_meta(prefix, data.get("after") or "", limit))

    # -- config -----------------------------------------------------------------

    def _read_config(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        config = self._store.config()
        return Response(data={
            "cas_required": config.cas_required,
            "delete_version_after": format_duration(config.delete_version_after),
            "max_versions": config.max_versions,
        })

    def _write_config(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        if not any(data.has(name) for name in _SETTINGS):
            return
        settings = _parse_settings(data, allow_negative_dva=True)
        if settings.get("delete_version_after", 0) < 0:
            settings["delete_version_after"] = DVA_DISABLED
        with key_lock(self._uuid, _CONFIG_LOCK_KEY):
            config = self._store.config()
            for name, value in settings.items():
                setattr(config, name, value)
            self._store.put_config(config)


def _parse_settings(data: FieldData, allow_negative_dva: bool) -> dict[str, Any]:
    """The settings present in the request, validated (so a 400 precedes any write)."""
    out: dict[str, Any] = {}
    if data.has("max_versions"):
        out["max_versions"] = wrap_uint32(go_int("max_versions", data.get("max_versions")))
    if data.has("cas_required"):
        out["cas_required"] = data.get("cas_required")
    if data.has("delete_version_after"):
        out["delete_version_after"] = duration_seconds(
            "delete_version_after", data.get("delete_version_after"), allow_negative_dva)
    return out
