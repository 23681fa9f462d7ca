"""The mount table: which secrets engine serves which path prefix.

Stored through the barrier at ``core/mounts``; each mount gets its own storage
view ``logical/<uuid>/`` so one engine can never read another's entries.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from strongroom.barrier.view import StorageView
from strongroom.config import DEFAULT_LEASE_TTL
from strongroom.core.request import Request, Response
from strongroom.errors import BadRequestError
from strongroom.physical.base import Backend

MOUNT_TABLE_PATH = "core/mounts"
# Tunables of the auth methods (only token/ exists): {"token/": {"listing_visibility": ...}}.
AUTH_CONFIG_PATH = "core/auth"
_MOUNT_PATH = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*/$")
RESERVED_PREFIXES = ("sys/", "auth/", "cubbyhole/", "identity/")


class LogicalBackend(Protocol):
    def handle(self, req: Request, rel_path: str) -> Response | None: ...




@dataclass
class MountEntry:
    path: str
    type: str
    description: str = ""
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    accessor: str = ""
    options: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    local: bool = False
    seal_wrap: bool = False

    def __post_init__(self) -> None:
        if not self.accessor:
            self.accessor = f"{self.type}_{self.uuid[:8]}"


@dataclass(frozen=True)
class MountContext:
    """What an engine instance is given: its own storage, its mount entry, a clock, and
    the system's lease TTLs (the config's, which a mount's tune overrides)."""

    storage: StorageView
    mount: MountEntry
    clock: Callable[[], datetime]
    system_default_lease_ttl: int = DEFAULT_LEASE_TTL
    system_max_lease_ttl: int = DEFAULT_LEASE_TTL

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


def load_mount_table(storage: Backend) -> list[MountEntry]:
    raw = storage.get(MOUNT_TABLE_PATH)
    if raw is None:
        return []
    return [MountEntry(**doc) for doc in json.loads(raw)]


def save_mount_table(storage: Backend, entries: list[MountEntry]) -> None:
    storage.put(MOUNT_TABLE_PATH, json.dumps([asdict(e) for e in entries]).encode())


def load_auth_config(storage: Backend) -> dict[str, dict[str, Any]]:
    raw = storage.get(AUTH_CONFIG_PATH)
    return {} if raw is None else dict(json.loads(raw))


def save_auth_config(storage: Backend, config: dict[str, dict[str, Any]]) -> None:
    storage.put(AUTH_CONFIG_PATH, json.dumps(config).encode())


class Router:
    """Longest-prefix match of a request path against the mounted engines."""

    def __init__(self) -> None:
        self._mounts: list[tuple[MountEntry, LogicalBackend]] = []

    def replace(self, mounts: list[tuple[MountEntry, LogicalBackend]]) -> None:
        self._mounts = sorted(mounts, key=lambda m: len(m[0].path), reverse=True)

    def match(self, path: str) -> tuple[MountEntry, LogicalBackend, str] | None:
        probe = path if path.endswith("/") else path + "/"
        for entry, backend in self._mounts:
            if probe.startswith(entry.path):
                return entry, backend, path[len(entry.path):]
        return None

    def entries(self) -> list[MountEntry]:
        return [entry for entry, _ in self._mounts]
