"""KV v2 secret data: data/, delete/, undelete/, destroy/ and subkeys/."""

from __future__ import annotations

import re
from typing import Any

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, StrongroomError
from strongroom.framework import Field, FieldData, FieldType, Path

from .common import (
    check_path,
    empty_not_found,
    encode_document,
    is_leaf,
    key_lock,
    not_found,
)
from .merge_patch import merge_patch
from .parsing import go_int, int_list
from .v2_store import KeyMetadata, KVConfig, V2Store, VersionMeta, deletion_time

_PATH = {"path": Field(FieldType.ANY)}
DATA_FIELDS = {
    **_PATH,
    "version": Field(FieldType.ANY),
    "options": Field(FieldType.MAP),
    "data": Field(FieldType.MAP),
}
VERSIONS_FIELDS = {**_PATH, "versions": Field(FieldType.ANY)}
SUBKEYS_FIELDS = {**_PATH, "version": Field(FieldType.ANY), "depth": Field(FieldType.ANY)}


def check_cas(data: FieldData, config: KVConfig, meta: KeyMetadata) -> None:
    """options.cas must equal the current version (0: no version yet) when given,
    and must be given when the mount or the key requires it."""
    options = data.get("options") if data.has("options") else None
    if options is not None and "cas" in options:
        raw = options["cas"]
        try:
            cas = 0 if raw is None else go_int("cas", raw)
        except BadRequestError:
            raise BadRequestError("error parsing check-and-set parameter") from None
        if cas != meta.current_version:
            raise BadRequestError("check-and-set parameter did not match the current version")
    elif config.cas_required or meta.cas_required:
        raise BadRequestError("check-and-set parameter required for this call")


def strip_values(doc: Any, max_depth: int) -> Any:
    """Vault's subkeys: every leaf (non-object or empty object) becomes null; objects
    deeper than ``max_depth`` (0: no limit) count as leaves."""

    def walk(obj: dict[str, Any], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in obj.items():
            deeper = depth + 1
            if isinstance(value, dict) and value and (max_depth == 0 or deeper <= max_depth):
                out[key] = walk(value, deeper)
            else:
                out[key] = None
        return out

    return walk(doc, 1) if isinstance(doc, dict) else None


class DataPaths:
    def __init__(self, store: V2Store, mount_uuid: str) -> None:
        self._store = store
        self._uuid = mount_uuid

    def paths(self) -> list[Path]:
        data_ops = {
            Operation.READ: self._read,
            Operation.UPDATE: self._write,
            Operation.PATCH: self._patch,
            Operation.DELETE: self._delete_latest,
        }
        return [
            Path("data/(?P<path>.*)", data_ops, DATA_FIELDS, existence=self._exists),
            Path("delete/(?P<path>.*)", {Operation.UPDATE: self._delete_versions},
                 VERSIONS_FIELDS),
            Path("undelete/(?P<path>.*)", {Operation.UPDATE: self._undelete}, VERSIONS_FIELDS),
            Path("destroy/(?P<path>.*)", {Operation.UPDATE: self._destroy}, VERSIONS_FIELDS),
            Path("subkeys/(?P<path>.*)", {Operation.READ: self._subkeys}, SUBKEYS_FIELDS),
        ]

    def _exists(self, req: Request, data: FieldData, m: re.Match[str]) -> bool:
        path = m.group("path")
        return is_leaf(path) and self._store.has_meta(check_path(path))

    def _selected(self, data: FieldData, meta: KeyMetadata) -> tuple[int, VersionMeta | None]:
        """The ?version asked for (0 or negative: the current one) and its state."""
        asked = go_int("version", data.get("version")) if data.has("version") else 0
        number = asked if asked > 0 else meta.current_version
        return number, meta.versions.get(number)

    def _read(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        path = m.group("path")
        if not is_leaf(path):
            return not_found()
        check_path(path)
        # Without the key's lock first (a read is two storage reads; the lock, across
        # every worker, cost a KV read ~12% of its time): if a write, destroy or delete
        # changed the version between them, read again under the lock.
        answer = self._read_version(path, data, locked=False)
        if answer is not None:
            return answer
        with key_lock(self._uuid, path):
            answer = self._read_version(path, data, locked=True)
        assert answer is not None
        return answer

    def _read_version(self, path: str, data: FieldData, locked: bool) -> Response | None:
        """The answer, or None when not ``locked`` and the version moved meanwhile."""
        meta = self._store.get_meta(path)
        if meta is None:
            return not_found()
        number, vm = self._selected(data, meta)
        if vm is None:
            return not_found()
        body = {"data": None, "metadata": meta.version_view(number, vm)}
        if vm.destroyed or (vm.deletion_time is not None and vm.deleted(self._store.now())):
            return Response(status=404, data=body)
        found = self._store.find_version(path, number)
        # The entry must be the one the metadata names (same creation time): a key
        # deleted and written again may reuse a version number.
        if found is None or found[0] != vm.created_time:
            if not locked:
                return None
            if found is None:
                raise StrongroomError("could not find version data")
        assert found is not None
        body["data"] = found[1]
        return Response(data=body)

    def _write(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        path = m.group("path")
        if not path:
            raise BadRequestError("missing path")
        if "data" not in req.data:
            raise BadRequestError("no data provided")
        # Vault stores an explicit null as a version whose data reads back as null.
        encoded = encode_document(data.get("data") if data.has("data") else None)
        with key_lock(self._uuid, check_path(path)):
            config = self._store.config()
            meta = self._store.get_meta(path) or KeyMetadata(key=path)
            check_cas(data, config, meta)
            number = self._store.write_version(meta, encoded, config)
        return Response(data=meta.version_view(number, meta.versions[number]))

    def _patch(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        path = check_path(m.group("path"))
        if "data" not in req.data:
            raise BadRequestError("no data provided")
        patch = data.get("data") if data.has("data") else None
        encode_document(patch)  # the patch alone must already fit the limits
        with key_lock(self._uuid, path):
            meta = self._store.get_meta(path)
            if meta is None:
                return empty_not_found()
            config = self._store.config()
            check_cas(data, config, meta)
            number = meta.current_version
            vm = meta.versions.get(number)
            if vm is None:
                return empty_not_found()
            if vm.destroyed or vm.deleted(self._store.now()):
                # Unlike a read, the 404 body is the bare version metadata.
                return Response(status=404, data=meta.version_view(number, vm))
            merged = merge_patch(self._store.get_version(path, number), patch)
            new = self._store.write_version(meta, encode_document(merged), config)
        return Response(data=meta.version_view(new, meta.versions[new]))

    def _delete_latest(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        """Soft-delete the current version, unless it is gone already."""
        path = m.group("path")
        if not is_leaf(path):
            return
        with key_lock(self._uuid, check_path(path)):
            meta = self._store.get_meta(path)
            if meta is None:
                return
            vm = meta.versions.get(meta.current_version)
            now = self._store.now()
            if vm is None or vm.destroyed or vm.deleted(now):
                return
            vm.deletion_time = now
            self._store.put_meta(meta)

    def _versions(self, data: FieldData, message: str) -> list[int]:
        versions = int_list("versions", data.get("versions"))
        if not versions:
            raise BadRequestError(message)
        return versions

    def _delete_versions(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        versions = self._versions(data, "No version number provided")
        path = check_path(m.group("path"))
        with key_lock(self._uuid, path):
            meta = self._store.get_meta(path)
            if meta is None:
                return
            now = self._store.now()
            live = [meta.versions[n] for n in versions if n in meta.versions]
            live = [vm for vm in live if not vm.destroyed and not vm.deleted(now)]
            for vm in live:
                vm.deletion_time = now
            if live:
                self._store.put_meta(meta)

    def _undelete(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        versions = self._versions(data, "No version number provided")
        path = check_path(m.group("path"))
        with key_lock(self._uuid, path):
            meta = self._store.get_meta(path)
            if meta is None:
                return
            config = self._store.config()
            # Restoring restarts the delete_version_after clock, as in Vault.
            due = deletion_time(self._store.now(), config, meta)
            live = [meta.versions[n] for n in versions if n in meta.versions]
            live = [vm for vm in live if not vm.destroyed]
            for vm in live:
                vm.deletion_time = due
            if live:
                self._store.put_meta(meta)

    def _destroy(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        versions = self._versions(data, "no version number provided")
        path = check_path(m.group("path"))
        with key_lock(self._uuid, path):
            meta = self._store.get_meta(path)
            if meta is None:
                return
            known = sorted({n for n in versions if n in meta.versions})
            fresh = [n for n in known if not meta.versions[n].destroyed]
            for number in fresh:
                meta.versions[number].destroyed = True
            if fresh:
                self._store.put_meta(meta)  # first, so no visible version lacks its data
            for number in known:
                self._store.delete_version(path, number)

    def _subkeys(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        path = m.group("path")
        depth = go_int("depth", data.get("depth")) if data.has("depth") else 0
        if not is_leaf(path):
            return not_found()
        with key_lock(self._uuid, check_path(path)):
            meta = self._store.get_meta(path)
            if meta is None:
                return not_found()
            number, vm = self._selected(data, meta)
            if vm is None:
                return not_found()
            body = {"metadata": meta.version_view(number, vm), "subkeys": None}
            if vm.destroyed or vm.deleted(self._store.now()):
                return Response(status=404, data=body)
            body["subkeys"] = strip_values(self._store.get_version(path, number), depth)
        return Response(data=body)
