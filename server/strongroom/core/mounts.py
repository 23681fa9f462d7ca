"""Mount entries, their stored tables and the router that matches request paths to them.

Three tables share one entry type and one stored format (a JSON list of entries):
secrets mounts at ``core/mounts``, auth methods at ``core/auth``, audit devices at
``core/audit``. Each secrets mount sees only its own storage view ``logical/<uuid>/``
and each auth mount ``auth/<uuid>/``, so one backend can never read another's entries.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from strongroom.barrier.view import StorageView
from strongroom.config import DEFAULT_LEASE_TTL
from strongroom.core.logical import LogicalBackend
from strongroom.errors import BadRequestError
from strongroom.physical.base import Backend

MOUNT_TABLE_PATH = "core/mounts"
AUTH_TABLE_PATH = "core/auth"
AUDIT_TABLE_PATH = "core/audit"
AUTH_CONFIG_PATH = AUTH_TABLE_PATH  # the name before issue 11 (it held token/'s tuning)
# A change of any of these keys reloads that table (Mounts.invalidate does it).
MOUNT_TABLE_KEYS = (MOUNT_TABLE_PATH, AUTH_TABLE_PATH, AUDIT_TABLE_PATH)
# Barrier prefixes of the mounts' storage views: a changed key under one of these is
# passed to the owning mount's backend by Mounts.invalidate.
MOUNT_VIEW_PREFIXES = ("logical/", "auth/", "audit/")
_MOUNT_PATH = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*/$")
RESERVED_PREFIXES = ("sys/", "auth/", "cubbyhole/", "identity/")

__all__ = ["LogicalBackend", "MountContext", "MountEntry", "EngineFactory", "Router"]


@dataclass(frozen=True)
class TableKind:
    """What distinguishes the three tables: where they are stored, where their mounts
    are routed (None: not routed, audit devices), and where their data lives."""

    name: str
    storage_path: str
    route_prefix: str | None
    view_prefix: str
    accessor_prefix: str


SECRETS = TableKind("secrets", MOUNT_TABLE_PATH, "", "logical/", "")
AUTH = TableKind("auth", AUTH_TABLE_PATH, "auth/", "auth/", "auth_")
# Audit devices are not routed; their view holds what a device keeps (its salt).
AUDIT = TableKind("audit", AUDIT_TABLE_PATH, None, "audit/", "audit_")


@dataclass
class MountEntry:
    path: str
    type: str
    description: str = ""
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    accessor: str = ""
    # None: given as null (Vault lists it so; the built-in mounts show null too).
    options: dict[str, str] | None = field(default_factory=dict)
    # Tunables: default_lease_ttl, max_lease_ttl (seconds), listing_visibility,
    # token_type (auth mounts).
    config: dict[str, Any] = field(default_factory=dict)
    local: bool = False
    seal_wrap: bool = False

    def __post_init__(self) -> None:
        if not self.accessor:
            self.accessor = f"{self.type}_{self.uuid[:8]}"

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> MountEntry:
        # Unknown keys (written by a later version) are ignored, not fatal to the load.
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


@dataclass(frozen=True)
class MountContext:
    """What a backend instance is given: its own storage, its mount entry, a clock, and
    the system's lease TTLs (the config's, which a mount's tune overrides)."""

    storage: StorageView
    mount: MountEntry
    clock: Callable[[], datetime]
    system_default_lease_ttl: int = DEFAULT_LEASE_TTL
    system_max_lease_ttl: int = DEFAULT_LEASE_TTL
    # Vault's SystemView.GeneratePasswordFromPolicy: a password from the named
    # sys/policies/password policy ("" = Vault's default generator).
    generate_password: Callable[[str], str] | None = None

    @property
    def default_lease_ttl(self) -> int:
        """Vault's ``System().DefaultLeaseTTL()``: the mount's tuned value, else the system's."""
        tuned = (self.mount.config or {}).get("default_lease_ttl")
        return tuned if isinstance(tuned, int) and tuned > 0 else self.system_default_lease_ttl


EngineFactory = Callable[[MountContext], LogicalBackend]


def normalize_mount_path(path: str) -> str:
    """'secret' -> 'secret/'; reject traversal, empty segments and odd characters."""
    path = path.strip("/") + "/"
    if not _MOUNT_PATH.match(path) or any(seg in (".", "..") for seg in path.split("/")):
        raise BadRequestError(f"invalid mount path {path!r}")
    return path


def load_table(storage: Backend, kind: TableKind) -> list[MountEntry]:
    raw = storage.get(kind.storage_path)
    if raw is None:
        return []
    doc = json.loads(raw)
    if isinstance(doc, dict):
        # Before issue 11, core/auth held only the token method's tunables:
        # {"token/": {"listing_visibility": ...}}. Read as entries; written back in
        # the new shape on the table's next change (a standby never writes).
        token = doc.get("token/")
        return [MountEntry(path="token/", type="token", config=dict(token))] if isinstance(
            token, dict) else []
    return [MountEntry.from_doc(item) for item in doc]


def save_table(storage: Backend, kind: TableKind, entries: list[MountEntry]) -> None:
    storage.put(kind.storage_path, json.dumps([asdict(e) for e in entries]).encode())


def load_mount_table(storage: Backend) -> list[MountEntry]:
    return load_table(storage, SECRETS)


def save_mount_table(storage: Backend, entries: list[MountEntry]) -> None:
    save_table(storage, SECRETS, entries)


@dataclass(frozen=True)
class Route:
    path: str  # the full request prefix: "secret/", "auth/token/", "sys/"
    entry: MountEntry
    backend: LogicalBackend


class Router:
    """Longest-prefix match of a request path against every routed mount (secrets
    engines, auth methods, ``sys/``); each table replaces its own routes."""

    def __init__(self) -> None:
        self._tables: dict[str, list[Route]] = {}
        self._routes: list[Route] = []

    def set_table(self, table: str, routes: list[Route]) -> None:
        tables = {**self._tables, table: list(routes)}
        merged = [route for group in tables.values() for route in group]
        # One assignment each: a request thread sees the old or the new list, whole.
        self._tables = tables
        self._routes = sorted(merged, key=lambda r: len(r.path), reverse=True)

    def clear(self) -> None:
        self._tables, self._routes = {}, []

    def match(self, path: str) -> tuple[MountEntry, LogicalBackend, str] | None:
        probe = path if path.endswith("/") else path + "/"
        for route in self._routes:
            if probe.startswith(route.path):
                return route.entry, route.backend, path[len(route.path):]
        return None

    def entries(self) -> list[MountEntry]:
        return [route.entry for route in self._routes]
