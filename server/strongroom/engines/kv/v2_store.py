"""KV version 2 storage: mount config, per-key metadata, one entry per version.

Layout inside the mount's view (all values JSON, encrypted by the barrier):

* ``config`` -- the mount-wide settings (:class:`KVConfig`).
* ``metadata/<path>`` -- one :class:`KeyMetadata` per secret: settings, custom
  metadata and the state of every retained version. LIST of ``metadata/`` is a
  storage LIST of this prefix.
* ``versions/<sha256(path)>/<n>`` -- the data of version ``n``. Hashing keeps
  these keys short and out of the metadata namespace.

A write touches at most the new version, the metadata entry and the versions
trimmed by max_versions. Times are integer nanoseconds since the Unix epoch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

import orjson

from strongroom.barrier.view import StorageView
from strongroom.errors import InvalidKeyError, StrongroomError
from strongroom.physical.base import Op, apply_ops

from .common import encode, format_time, now_ns

CONFIG_KEY = "config"
METADATA_PREFIX = "metadata/"
VERSIONS_PREFIX = "versions/"
DEFAULT_MAX_VERSIONS = 10
# delete_version_after in the mount config: negative means "disabled for every key".
DVA_DISABLED = -1
UINT32 = 1 << 32


@dataclass
class KVConfig:
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0  # seconds; 0 unset, DVA_DISABLED disabled


@dataclass
class VersionMeta:
    created_time: int
    deletion_time: int | None = None
    destroyed: bool = False

    def deleted(self, now: int) -> bool:
        """Soft-deleted: a deletion time that has come (a future one is only pending)."""
        return self.deletion_time is not None and self.deletion_time <= now

    def view(self) -> dict[str, Any]:
        return {
            "created_time": format_time(self.created_time),
            "deletion_time": format_time(self.deletion_time),
            "destroyed": self.destroyed,
        }


@dataclass
class KeyMetadata:
    key: str
    created_time: int | None = None
    updated_time: int | None = None
    current_version: int = 0
    oldest_version: int = 0
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0  # seconds, never negative
    custom_metadata: dict[str, str] = field(default_factory=dict)
    versions: dict[int, VersionMeta] = field(default_factory=dict)

    def version_view(self, number: int, vm: VersionMeta) -> dict[str, Any]:
        """The metadata block of one version, as data reads and writes return it."""
        return {
            "created_time": format_time(vm.created_time),
            "custom_metadata": self.custom_metadata or None,
            "deletion_time": format_time(vm.deletion_time),
            "destroyed": vm.destroyed,
            "version": number,
        }

    def add_version(self, created: int, deletion: int | None, config_max: int) -> list[int]:
        """Vault's AddVersion: append, then slide the window; returns versions trimmed."""
        self.current_version += 1
        self.versions[self.current_version] = VersionMeta(created, deletion)
        self.updated_time = created
        if self.created_time is None:
            self.created_time = created
        limit = max(self.max_versions, config_max) or DEFAULT_MAX_VERSIONS
        if self.current_version - self.oldest_version < limit:
            return []
        last = self.current_version - limit
        trimmed = [n for n in range(self.oldest_version, last + 1) if n in self.versions]
        for number in trimmed:
            del self.versions[number]
        self.oldest_version = last + 1
        return trimmed


_META_FIELDS = tuple(f.name for f in fields(KeyMetadata) if f.name != "versions")


def deletion_time(base: int, config: KVConfig, meta: KeyMetadata) -> int | None:
    """When a version written (or undeleted) at ``base`` is due to be soft-deleted.

    The smaller non-zero delete_version_after of the mount and the key wins; a
    negative mount value disables the feature entirely.
    """
    if config.delete_version_after < 0:
        return None
    candidates = [d for d in (config.delete_version_after, meta.delete_version_after) if d > 0]
    return base + min(candidates) * 1_000_000_000 if candidates else None


class V2Store:
    def __init__(self, storage: StorageView, clock: Callable[[], datetime]) -> None:
        self._storage = storage
        self._clock = clock

    def now(self) -> int:
        return now_ns(self._clock)

    # -- config -------------------------------------------------------------

    def config(self) -> KVConfig:
        raw = self._storage.get(CONFIG_KEY)
        return KVConfig(**orjson.loads(raw)) if raw is not None else KVConfig()

    def put_config(self, config: KVConfig) -> None:
        self._storage.put(CONFIG_KEY, encode(asdict(config)))

    # -- metadata -----------------------------------------------------------

    def has_meta(self, path: str) -> bool:
        """Whether ``path`` has metadata (ACL existence checks): no parse needed."""
        return self._storage.get(METADATA_PREFIX + path) is not None

    def get_meta(self, path: str) -> KeyMetadata | None:
        raw = self._storage.get(METADATA_PREFIX + path)
        if raw is None:
            return None
        doc = orjson.loads(raw)
        versions = {int(n): VersionMeta(**vm) for n, vm in doc.pop("versions").items()}
        return KeyMetadata(**doc, versions=versions)

    @staticmethod
    def _meta_blob(meta: KeyMetadata) -> bytes:
        # orjson encodes dataclasses itself; asdict's deep copy cost ~9% of a KV write.
        doc = {name: getattr(meta, name) for name in _META_FIELDS}
        doc["versions"] = {str(n): vm for n, vm in meta.versions.items()}
        return encode(doc)

    def put_meta(self, meta: KeyMetadata) -> None:
        self._storage.put(METADATA_PREFIX + meta.key, self._meta_blob(meta))

    def delete_meta(self, path: str) -> None:
        self._storage.delete(METADATA_PREFIX + path)

    def list_meta(self, prefix: str, after: str = "", limit: int = 0) -> list[str]:
        return self._storage.list_page(METADATA_PREFIX + prefix, after, limit)

    # -- versions -----------------------------------------------------------

    @staticmethod
    def _version_key(path: str, number: int) -> str:
        return f"{VERSIONS_PREFIX}{hashlib.sha256(path.encode()).hexdigest()}/{number}"

    def find_version(self, path: str, number: int) -> tuple[int, Any] | None:
        """(created_time, data) of a stored version, or None if it is not stored."""
        raw = self._storage.get(self._version_key(path, number))
        if raw is None:
            return None
        doc = orjson.loads(raw)
        return doc.get("created_time", -1), doc["data"]

    def get_version(self, path: str, number: int) -> Any:
        raw = self._storage.get(self._version_key(path, number))
        if raw is None:
            raise StrongroomError("could not find version data")
        return orjson.loads(raw)["data"]

    def delete_version(self, path: str, number: int) -> None:
        if number > 0:
            self._storage.delete(self._version_key(path, number))

    def write_version(self, meta: KeyMetadata, data_json: bytes, config: KVConfig) -> int:
        """Store a new version and its metadata; returns the new version number.

        The version entry is written before the metadata that makes it visible,
        and trimmed versions are deleted only after, so a crash at any point
        leaves every visible version readable.
        """
        created = self.now()
        number = meta.current_version + 1
        key = self._version_key(meta.key, number)
        version = b'{"created_time":%d,"data":%s}' % (created, data_json)
        trimmed = meta.add_version(created, deletion_time(created, config, meta),
                                   config.max_versions)
        # One transaction where storage has them (Consul): version, metadata, trims.
        ops: list[Op] = [("put", key, version), ("put", METADATA_PREFIX + meta.key,
                                                 self._meta_blob(meta))]
        ops += [("delete", self._version_key(meta.key, old), None) for old in trimmed if old > 0]
        try:
            apply_ops(self._storage, ops)
        except InvalidKeyError:
            self._storage.delete(key)  # the path cannot be stored: leave no orphan
            raise
        return number

    def delete_all(self, meta: KeyMetadata) -> None:
        for number in meta.versions:
            self.delete_version(meta.key, number)
        self.delete_meta(meta.key)


def wrap_uint32(value: int) -> int:
    """Vault stores max_versions as uint32: -1 becomes 4294967295, as in Go."""
    return value % UINT32
