"""One mount-table type for secrets mounts, auth methods and audit devices.

A ``MountTable`` holds the stored entries of one table (core/mounts, core/auth,
core/audit) plus the built-in entries the core always has (``sys/`` and
``identity/`` among secrets, ``token/`` among auth methods), and one backend
instance per entry, created by the factory registered for its type. ``reload``
diffs the stored table against what is mounted: an unchanged entry keeps its
backend instance (a tune of TTLs or description updates the entry in place), a
new one gets a fresh backend, and a removed or replaced one has its ``cleanup``
called (connection pools must not leak). A standby never writes, so ``initialize``
runs only once the table is told the node is active.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strongroom.barrier.view import StorageView
from strongroom.config import DEFAULT_LEASE_TTL
from strongroom.core.mounts import (
    AUDIT,
    AUTH,
    RESERVED_PREFIXES,
    SECRETS,
    EngineFactory,
    LogicalBackend,
    MountContext,
    MountEntry,
    Route,
    Router,
    TableKind,
    load_table,
    normalize_mount_path,
    save_table,
)
from strongroom.core.sys.password_policies import PasswordPolicies
from strongroom.errors import BadRequestError
from strongroom.node.locks import node_lock
from strongroom.physical.base import Backend

log = logging.getLogger(__name__)

CLUSTER_INFO_PATH = "core/cluster/info"  # written at init (node/coordinator.py)
# A backend type with no factory (one this build does not ship): listed, not routed.
Factory = EngineFactory | None


def delete_prefix(storage: Backend, prefix: str) -> None:
    """Delete every entry below ``prefix`` (which ends in '/'), depth first."""
    for child in storage.list(prefix):
        if child.endswith("/"):
            delete_prefix(storage, prefix + child)
        else:
            storage.delete(prefix + child)


def builtin_entry(kind: TableKind, cluster_id: str, path: str, type_: str,
                  description: str) -> MountEntry:
    """A mount the core always has; its ids are stable for the cluster's lifetime."""
    ident = str(uuid.uuid5(uuid.NAMESPACE_URL,
                           f"{cluster_id or 'unsealed'}/{kind.route_prefix or ''}{path}"))
    return MountEntry(path=path, type=type_, description=description, uuid=ident,
                      accessor=f"{kind.accessor_prefix}{type_}_{ident[:8]}")


def _same_backend(a: MountEntry, b: MountEntry) -> bool:
    """Whether ``b`` can be served by the backend built for ``a`` (TTLs, visibility
    and description are read from the entry at request time; the rest is not)."""
    return (a.uuid, a.path, a.type, a.options, a.local, a.seal_wrap) == (
        b.uuid, b.path, b.type, b.options, b.local, b.seal_wrap)


@dataclass
class Mounted:
    entry: MountEntry
    backend: LogicalBackend | None
    initialized: bool = False


class MountTable:
    """One table: its stored entries, its built-ins, and the mounted backends."""

    def __init__(self, kind: TableKind, barrier: Backend, clock: Callable[[], datetime],
                 router: Router | None, factories: Mapping[str, EngineFactory],
                 builtin_factories: Mapping[str, Factory] | None = None,
                 builtins: Sequence[tuple[str, str, str]] = (),
                 notify: Callable[[], None] = lambda: None,
                 system_ttls: tuple[int, int] = (DEFAULT_LEASE_TTL, DEFAULT_LEASE_TTL)) -> None:
        self.kind = kind
        self._system_ttls = system_ttls  # the config's default/max lease TTL
        self._barrier = barrier
        self._clock = clock
        self._router = router
        self._factories = factories  # the types ``enable`` accepts (strongroom.registry)
        self._builtin_factories = dict(builtin_factories or {})
        self._builtins = tuple(builtins)  # (path, type, description)
        self._notify = notify
        self._cluster_id = ""
        self._active = False
        self._mounted: list[Mounted] = []
        self._reload_lock = threading.RLock()

    # -- reading ------------------------------------------------------------------

    def can_enable(self, type_: str) -> bool:
        return type_ in self._factories

    def entries(self) -> list[MountEntry]:
        return [m.entry for m in self._mounted]

    def mounted(self) -> list[tuple[MountEntry, LogicalBackend | None]]:
        """Each entry with its backend (None: a type this build does not ship)."""
        return [(m.entry, m.backend) for m in self._mounted]

    def get(self, path: str) -> MountEntry | None:
        path = normalize_mount_path(path)
        return next((m.entry for m in self._mounted if m.entry.path == path), None)

    def backend(self, path: str) -> LogicalBackend | None:
        path = normalize_mount_path(path)
        return next((m.backend for m in self._mounted if m.entry.path == path), None)

    def is_builtin(self, path: str) -> bool:
        return any(path == b[0] for b in self._builtins)

    def match(self, path: str) -> MountEntry | None:
        """The entry whose path is the longest prefix of ``path`` (table-relative)."""
        probe = path if path.endswith("/") else path + "/"
        found = [m.entry for m in self._mounted if probe.startswith(m.entry.path)]
        return max(found, key=lambda e: len(e.path), default=None)

    # -- loading ------------------------------------------------------------------

    def load(self, active: bool | None = None) -> None:
        """(Re)load from storage (unseal, failover); ``active``: this node may write,
        so backends get ``initialize``. None keeps what the last load was told."""
        if active is not None:
            self._active = active
        raw = self._barrier.get(CLUSTER_INFO_PATH)
        self._cluster_id = str(json.loads(raw).get("id", "")) if raw is not None else ""
        self.reload()

    def _desired(self) -> list[MountEntry]:
        stored = load_table(self._barrier, self.kind)
        by_path = {e.path: e for e in stored}
        entries = []
        for path, type_, description in self._builtins:
            entry = builtin_entry(self.kind, self._cluster_id, path, type_, description)
            tuned = by_path.pop(path, None)
            if tuned is not None:
                entry.config = dict(tuned.config)
            entries.append(entry)
        return entries + list(by_path.values())

    def _create(self, entry: MountEntry) -> LogicalBackend | None:
        factory = (self._builtin_factories[entry.type] if entry.type in self._builtin_factories
                   else self._factories.get(entry.type))
        if factory is None:
            return None  # a type this build does not ship: its data stays intact
        view = StorageView(self._barrier, f"{self.kind.view_prefix}{entry.uuid}/")
        return factory(MountContext(view, entry, self._clock, *self._system_ttls,
                                    generate_password=PasswordPolicies(self._barrier).generate))

    def build(self, entry: MountEntry) -> LogicalBackend | None:
        """A backend for ``entry`` outside the table (sys/audit tests a device with it
        before the entry is stored); the caller cleans it up."""
        return self._create(entry)

    def reload(self) -> None:
        """Bring the mounted backends in line with the stored table, touching only
        what changed: new entries are created, removed or replaced ones cleaned up."""
        with self._reload_lock:
            desired = self._desired()
            previous = {m.entry.uuid: m for m in self._mounted}
            mounted: list[Mounted] = []
            created: list[Mounted] = []
            try:
                for entry in desired:
                    prev = previous.get(entry.uuid)
                    if prev is not None and _same_backend(prev.entry, entry):
                        del previous[entry.uuid]
                        prev.entry.description, prev.entry.config = entry.description, entry.config
                        prev.entry.accessor = entry.accessor
                        mounted.append(prev)
                        continue
                    fresh = Mounted(entry, self._create(entry))
                    created.append(fresh)
                    mounted.append(fresh)
            except BaseException:
                # Keep serving the old table; drop what was half built.
                for m in created:
                    self._cleanup(m)
                raise
            self._mounted = mounted
            self._publish()
            for m in previous.values():  # removed, or replaced by a new backend
                self._cleanup(m)
            if self._active:
                self._initialize_all()

    def _publish(self) -> None:
        if self._router is None or self.kind.route_prefix is None:
            return
        prefix = self.kind.route_prefix
        self._router.set_table(self.kind.name, [Route(prefix + m.entry.path, m.entry, m.backend)
                                                for m in self._mounted if m.backend is not None])

    def _initialize_all(self) -> None:
        for m in self._mounted:
            if m.backend is None or m.initialized:
                continue
            try:
                m.backend.initialize()
                m.initialized = True
            except Exception as exc:  # noqa: BLE001 - one failing mount must not stop the rest
                log.error("event=mount_initialize_failed table=%s path=%s type=%s error=%s",
                          self.kind.name, m.entry.path, m.entry.type, type(exc).__name__)

    def _cleanup(self, m: Mounted) -> None:
        if m.backend is None:
            return
        try:
            m.backend.cleanup()
        except Exception as exc:  # noqa: BLE001 - cleanup of the others goes on
            log.error("event=mount_cleanup_failed table=%s path=%s type=%s error=%s",
                      self.kind.name, m.entry.path, m.entry.type, type(exc).__name__)

    def unload(self) -> None:
        """Seal: every backend is cleaned up and nothing of this table is routed."""
        with self._reload_lock:
            mounted, self._mounted = self._mounted, []
            self._publish()
            for m in mounted:
                self._cleanup(m)

    # -- lifecycle hooks ------------------------------------------------------------

    def invalidate(self, storage_key: str) -> bool:
        """Route a changed barrier key to the backend whose view holds it; True if one
        of this table's mounts owns the key."""
        prefix = self.kind.view_prefix
        if not storage_key.startswith(prefix):
            return False
        ident, _, rel = storage_key[len(prefix):].partition("/")
        for m in self._mounted:
            if m.entry.uuid == ident:
                if m.backend is not None:
                    m.backend.invalidate(rel)
                return True
        return False

    def periodic(self) -> None:
        """Every mounted backend's periodic work; one failure does not stop the rest."""
        for m in list(self._mounted):
            if m.backend is None:
                continue
            try:
                m.backend.periodic()
            except Exception as exc:  # noqa: BLE001 - the other mounts still run
                # The type only: an exception's text may carry a connection string.
                log.error("event=mount_periodic_failed table=%s path=%s type=%s error=%s",
                          self.kind.name, m.entry.path, m.entry.type, type(exc).__name__)

    # -- changing -----------------------------------------------------------------

    def _stored(self) -> list[MountEntry]:
        """The stored entries with the built-ins (tuned or not), as the next save."""
        return self._desired()

    def _save(self, entries: list[MountEntry]) -> None:
        # Built-ins are derived, not stored, unless tuned (their config is kept).
        keep = [e for e in entries if not self.is_builtin(e.path) or e.config]
        save_table(self._barrier, self.kind, keep)

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """Read-modify-write of the stored table, excluding every worker of the node;
        the reload it triggers runs after the lock is released (a backend's factory
        or initialize may take node locks of its own)."""
        with node_lock("mount-table|" + self.kind.name):
            yield
        self._notify()

    def enable(self, entry: MountEntry) -> None:
        """Add ``entry``; its path must not overlap an existing mount."""
        entry.path = normalize_mount_path(entry.path)
        with self._changing():
            entries = self._stored()
            for existing in entries:
                if entry.path.startswith(existing.path) or existing.path.startswith(entry.path):
                    raise BadRequestError(f"path is already in use at {existing.path}")
            if not self.can_enable(entry.type):
                raise BadRequestError(f"plugin not found in the catalog: {entry.type}")
            entries.append(entry)
            self._save(entries)

    def disable(self, path: str) -> MountEntry | None:
        """Remove the entry at ``path`` and its data; None if nothing was mounted."""
        path = normalize_mount_path(path)
        with self._changing():
            entries = self._stored()
            victim = next((e for e in entries if e.path == path), None)
            if victim is None:
                return None
            self._save([e for e in entries if e is not victim])
        # The reload has cleaned up this worker's backend before its data goes (other
        # workers clean up theirs when they reload).
        delete_prefix(self._barrier, f"{self.kind.view_prefix}{victim.uuid}/")
        return victim

    def update(self, path: str, **changes: Any) -> MountEntry:
        path = normalize_mount_path(path)
        with self._changing():
            entries = self._stored()
            entry = next((e for e in entries if e.path == path), None)
            if entry is None:
                raise BadRequestError(f"no mount at {path!r}")
            for key, value in changes.items():
                setattr(entry, key, value)
            self._save(entries)
            return entry

    def move(self, source: str, target: str) -> None:
        """Change a mount's path (its data lives under its uuid, so nothing moves)."""
        with self._changing():
            entries = self._stored()
            entry = next((e for e in entries if e.path == source), None)
            if entry is None:
                shown = (self.kind.route_prefix or "") + source
                raise BadRequestError(f'no matching mount at "{shown}"')
            if any(target.startswith(e.path) or e.path.startswith(target) for e in entries
                   if e is not entry):
                raise BadRequestError(f"path already in use at {target!r}")
            entry.path = target
            self._save(entries)


class Mounts:
    """The node's three tables: ``secrets`` (core/mounts), ``auth`` (core/auth) and
    ``audit`` (core/audit, not routed). What applies to all of them (load, reload,
    invalidate, periodic, seal) is called here."""

    def __init__(self, barrier: Backend, clock: Callable[[], datetime], router: Router,
                 notify: Callable[[], None], *,
                 engines: Mapping[str, EngineFactory],
                 auth_methods: Mapping[str, EngineFactory],
                 audit_devices: Mapping[str, EngineFactory],
                 builtin_factories: Mapping[str, Factory],
                 system_ttls: tuple[int, int] = (DEFAULT_LEASE_TTL, DEFAULT_LEASE_TTL)) -> None:
        self._barrier = barrier
        self.secrets = MountTable(SECRETS, barrier, clock, router, engines, builtin_factories, (
            ("sys/", "system", "system endpoints used for control, policy and debugging"),
            ("identity/", "identity", "identity store"),
        ), notify, system_ttls)
        self.auth = MountTable(AUTH, barrier, clock, router, auth_methods, builtin_factories, (
            ("token/", "token", "token based credentials"),
        ), notify, system_ttls)
        self.audit = MountTable(AUDIT, barrier, clock, None, audit_devices, None, (), notify,
                                system_ttls)

    def __iter__(self) -> Iterator[MountTable]:
        return iter((self.secrets, self.auth, self.audit))

    def load(self, active: bool | None = None) -> None:
        for table in self:
            table.load(active)

    def reload(self) -> None:
        for table in self:
            table.reload()

    def unload(self) -> None:
        for table in self:
            table.unload()

    def periodic(self) -> None:
        for table in self:
            table.periodic()

    def invalidate(self, storage_key: str) -> None:
        """A barrier key changed elsewhere: a table's own key reloads that table; a
        key under a mount's view is passed to that mount's backend."""
        for table in self:
            if storage_key == table.kind.storage_path:
                table.reload()
                return
        for table in self:
            if table.invalidate(storage_key):
                return

    def destroy_cubbyhole(self, token_hash: str) -> None:
        for entry in self.secrets.entries():
            if entry.type == "cubbyhole":
                delete_prefix(self._barrier, f"logical/{entry.uuid}/{token_hash}/")

    def migration(self, migration_id: str) -> dict[str, str] | None:
        if not migration_id or "/" in migration_id or len(migration_id) > 64:
            return None
        raw = self._barrier.get("core/remount/" + migration_id)
        return json.loads(raw) if raw is not None else None

    def remount(self, source: str, target: str) -> str:
        """Move a secrets mount; returns the migration id (done when this returns)."""
        source, target = normalize_mount_path(source), normalize_mount_path(target)
        if source.startswith("auth/"):
            # An auth method moves within the auth table (OpenBao's answers).
            if not target.startswith("auth/"):
                raise BadRequestError(
                    f'cannot remount auth mount to non-auth mount "{target}"')
            if self.auth.is_builtin(source[5:]):
                raise BadRequestError(f'cannot remount "{source}"')
            self.auth.move(source[5:], target[5:])
        elif target.startswith("auth/"):
            raise BadRequestError(f"cannot remount to destination {target}")
        elif source.startswith(RESERVED_PREFIXES) or target.startswith(RESERVED_PREFIXES):
            raise BadRequestError("cannot remount reserved paths")
        else:
            self.secrets.move(source, target)
        migration_id = str(uuid.uuid4())
        info = {"source_mount": source, "target_mount": target, "status": "success"}
        self._barrier.put("core/remount/" + migration_id, json.dumps(info).encode())
        return migration_id
