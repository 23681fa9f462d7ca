"""Enable, disable, tune and move mounts; keep every worker's router current."""

from __future__ import annotations

import json
import threading
import uuid
from typing import TYPE_CHECKING, Any

from strongroom.barrier.view import StorageView
from strongroom.core.mounts import (
    RESERVED_PREFIXES,
    EngineFactory,
    LogicalBackend,
    MountContext,
    MountEntry,
    load_auth_config,
    load_mount_table,
    normalize_mount_path,
    save_auth_config,
    save_mount_table,
)
from strongroom.engines.cubbyhole import CubbyholeBackend
from strongroom.errors import BadRequestError
from strongroom.physical.base import Backend

if TYPE_CHECKING:
    from strongroom.core.core import Core

# `vault secrets enable kv-v2` sends this type; Vault stores it as kv version 2.
_TYPE_ALIASES = {"kv-v2": ("kv", {"version": "2"}), "generic": ("kv", {})}


def delete_prefix(storage: Backend, prefix: str) -> None:
    """Delete every entry below ``prefix`` (which ends in '/'), depth first."""
    for child in storage.list(prefix):
        if child.endswith("/"):
            delete_prefix(storage, prefix + child)
        else:
            storage.delete(prefix + child)


class MountTable:
    def __init__(self, core: Core, engines: dict[str, EngineFactory]) -> None:
        self._core = core
        self._engines = {"cubbyhole": CubbyholeBackend.factory, **engines}
        self._lock = threading.Lock()
        self._auth_config: dict[str, dict[str, Any]] = {}

    def known_type(self, type_: str) -> bool:
        return type_ in self._engines

    def load(self) -> None:
        mounts: list[tuple[MountEntry, LogicalBackend]] = []
        for entry in load_mount_table(self._core.barrier):
            factory = self._engines.get(entry.type)
            if factory is None:
                continue  # an engine type this build does not ship; its data stays intact
            mounts.append((entry, factory(self._context(entry))))
        self._core.router.replace(mounts)
        self._auth_config = load_auth_config(self._core.barrier)

    def auth_config(self, path: str) -> dict[str, Any]:
        """The tuned settings of the auth method at ``path`` (``token/``)."""
        return dict(self._auth_config.get(path, {}))

    def tune_auth(self, path: str, changes: dict[str, Any]) -> None:
        """Store tuned settings of an auth method; every worker reloads them."""
        with self._lock:
            config = load_auth_config(self._core.barrier)
            config[path] = {**config.get(path, {}), **changes}
            save_auth_config(self._core.barrier, config)
            self._core.changed()

    def _context(self, entry: MountEntry) -> MountContext:
        view = StorageView(self._core.barrier, f"logical/{entry.uuid}/")
        return MountContext(view, entry, self._core.clock)

    def _save(self, entries: list[MountEntry]) -> None:
        save_mount_table(self._core.barrier, entries)
        self._core.changed()

    def enable(self, path: str, type_: str, description: str, options: dict[str, str],
               config: dict[str, Any], local: bool, seal_wrap: bool) -> None:
        path = normalize_mount_path(path)
        if path.startswith(RESERVED_PREFIXES):
            raise BadRequestError(f"cannot mount under reserved path {path!r}")
        type_, extra = _TYPE_ALIASES.get(type_, (type_, {}))
        if not self.known_type(type_) or type_ == "cubbyhole":
            raise BadRequestError(f"plugin not found in the catalog: {type_}")
        with self._lock:
            entries = load_mount_table(self._core.barrier)
            for existing in entries:
                if path.startswith(existing.path) or existing.path.startswith(path):
                    raise BadRequestError(f"path is already in use at {existing.path}")
            entries.append(MountEntry(path=path, type=type_, description=description,
                                      options={**options, **extra}, config=config,
                                      local=local, seal_wrap=seal_wrap))
            self._save(entries)

    def get(self, path: str) -> MountEntry | None:
        path = normalize_mount_path(path)
        return next((e for e in self._core.router.entries() if e.path == path), None)

    def disable(self, path: str) -> None:
        path = normalize_mount_path(path)
        if path.startswith(RESERVED_PREFIXES):
            raise BadRequestError(f"cannot unmount {path!r}")
        with self._lock:
            entries = load_mount_table(self._core.barrier)
            victim = next((e for e in entries if e.path == path), None)
            if victim is None:
                return  # Vault: disabling a path with nothing mounted succeeds
            self._save([e for e in entries if e is not victim])
            delete_prefix(self._core.barrier, f"logical/{victim.uuid}/")

    def update(self, path: str, **changes: Any) -> MountEntry:
        path = normalize_mount_path(path)
        with self._lock:
            entries = load_mount_table(self._core.barrier)
            entry = next((e for e in entries if e.path == path), None)
            if entry is None:
                raise BadRequestError(f"no mount at {path!r}")
            for key, value in changes.items():
                setattr(entry, key, value)
            self._save(entries)
            return entry

    def migration(self, migration_id: str) -> dict[str, str] | None:
        if not migration_id or "/" in migration_id or len(migration_id) > 64:
            return None
        raw = self._core.barrier.get("core/remount/" + migration_id)
        return json.loads(raw) if raw is not None else None

    def remount(self, source: str, target: str) -> str:
        """Move a mount; returns the migration id (the move is done when this returns)."""
        source, target = normalize_mount_path(source), normalize_mount_path(target)
        if source.startswith(RESERVED_PREFIXES) or target.startswith(RESERVED_PREFIXES):
            raise BadRequestError("cannot remount reserved paths")
        with self._lock:
            entries = load_mount_table(self._core.barrier)
            entry = next((e for e in entries if e.path == source), None)
            if entry is None:
                raise BadRequestError(f'no matching mount at "{source}"')
            if any(target.startswith(e.path) or e.path.startswith(target) for e in entries
                   if e is not entry):
                raise BadRequestError(f"path already in use at {target!r}")
            # Data lives under the mount's uuid, so moving is a table update only.
            entry.path = target
            self._save(entries)
        migration_id = str(uuid.uuid4())
        info = {"source_mount": source, "target_mount": target, "status": "success"}
        self._core.barrier.put("core/remount/" + migration_id, json.dumps(info).encode())
        return migration_id

    def destroy_cubbyhole(self, token_hash: str) -> None:
        for entry in self._core.router.entries():
            if entry.type == "cubbyhole":
                delete_prefix(self._core.barrier, f"logical/{entry.uuid}/{token_hash}/")
