"""Load, cache and persist transit key rings (Vault's keysutil ``LockManager`` + cache).

Storage (mount-relative, Vault's names): ``policy/<name>`` holds the ring's document
with the versions from ``min_decryption_version`` up; ``archive/<name>`` holds every
version from ``archive_min_version`` (Vault's ``handleArchiving``); ``config/cache``
holds the cache size.

Each process keeps decoded Policies in memory: a request for a cached key does not
touch storage or decode JSON. A cached Policy is never modified: a change reloads the
document under ``node_lock`` (every worker of the node), applies the change to that
fresh copy, persists it and installs it. Other workers and nodes learn of the write
through ``invalidate`` (the write notifier) and drop their copy; a generation counter
stops a load that raced with an invalidation from installing what it read.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager

from strongroom.barrier.view import StorageView
from strongroom.node.locks import node_lock

from . import policy_json
from .policy import KeyEntry, Policy, TransitInternalError

POLICY_PREFIX = "policy/"
ARCHIVE_PREFIX = "archive/"
CACHE_CONFIG = "config/cache"
MIN_CACHE_SIZE = 10


class KeyStore:
    def __init__(self, storage: StorageView, lock_scope: str) -> None:
        self._storage = storage
        self._lock_scope = lock_scope  # "transit:<mount uuid>"
        self._cache: OrderedDict[str, Policy] = OrderedDict()
        self._mutex = threading.Lock()
        self._generation = 0
        self.cache_size = self._stored_cache_size()

    # -- reads ---------------------------------------------------------------------------

    def get(self, name: str) -> Policy | None:
        """The ring ``name`` or None. Cached: no storage access after the first call."""
        policy = self._cache.get(name)
        if policy is not None:
            if self.cache_size:
                with self._mutex:
                    if name in self._cache:
                        self._cache.move_to_end(name)
            return policy
        return self._load(name)

    def _load(self, name: str) -> Policy | None:
        with self._mutex:
            generation = self._generation
        policy = self.read(name)
        if policy is None:
            return None
        if needs_upgrade(policy):
            with self.locked(name):
                policy = self.read(name)
                if policy is None:
                    return None
                if needs_upgrade(policy):
                    upgrade(policy)
                    self._persist(policy)
            with self._mutex:
                generation = self._generation
        self._install(name, policy, generation)
        return policy

    def read(self, name: str) -> Policy | None:
        """Decode ``policy/<name>`` from storage, bypassing the cache."""
        raw = self._storage.get(POLICY_PREFIX + name)
        if raw is None:
            return None
        try:
            return policy_json.loads(raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise TransitInternalError(f"failed to decode key {name!r}: {exc}") from None

    def names(self, after: str = "", limit: int = -1) -> list[str]:
        """Key names in order; ``after`` (exclusive) and ``limit`` as Vault's ListPage."""
        names = sorted(self._storage.list(POLICY_PREFIX))
        if after:
            names = [n for n in names if n > after]
        if limit > 0:
            names = names[:limit]
        return names

    def archive(self, name: str) -> list[KeyEntry]:
        return policy_json.archive_loads(self._storage.get(ARCHIVE_PREFIX + name))

    # -- writes --------------------------------------------------------------------------

    def locked(self, name: str) -> AbstractContextManager[None]:
        """Exclude every other change of ``name`` on this node (all workers)."""
        return node_lock(f"{self._lock_scope}:{name}")

    def update(self, name: str, fn: Callable[[Policy], bool | None]) -> Policy | None:
        """Reload ``name`` under its lock, apply ``fn`` and persist unless it returns
        False; None when the key does not exist. An exception from ``fn`` changes
        nothing (the cached copy was never touched)."""
        with self.locked(name):
            policy = self.read(name)
            if policy is None:
                return None
            if needs_upgrade(policy):
                upgrade(policy)
            if fn(policy) is not False:
                self._persist(policy)
            self._install(name, policy, None)
            return policy

    def create(self, name: str, factory: Callable[[], Policy]) -> tuple[Policy, bool]:
        """The existing ring, or a new one from ``factory`` persisted: (policy, created)."""
        with self.locked(name):
            existing = self.read(name)
            if existing is not None:
                self._install(name, existing, None)
                return existing, False
            policy = factory()
            self._persist(policy)
            self._install(name, policy, None)
            return policy, True

    def save(self, policy: Policy) -> None:
        """Persist ``policy`` as is (restore, import); the caller holds ``locked``."""
        self._persist(policy)
        self._install(policy.name, policy, None)

    def delete(self, name: str) -> None:
        with self.locked(name):
            policy = self.read(name)
            if policy is None:
                raise TransitInternalError("could not delete key; not found")
            if not policy.deletion_allowed:
                raise TransitInternalError("deletion is not allowed for this key")
            self._storage.transaction([("delete", POLICY_PREFIX + name, None),
                                       ("delete", ARCHIVE_PREFIX + name, None)])
            self.invalidate(POLICY_PREFIX + name)

    def _persist(self, policy: Policy) -> None:
        """Vault's ``Persist``: archive first, then the ring's document."""
        archive = handle_archiving(policy, self.archive(policy.name))
        ops: list[tuple[str, str, bytes | None]] = []
        if archive is not None:
            ops.append(("put", ARCHIVE_PREFIX + policy.name,
                        policy_json.archive_dumps(archive)))
        ops.append(("put", POLICY_PREFIX + policy.name, policy_json.dumps(policy)))
        self._storage.transaction(ops)

    # -- cache -----------------------------------------------------------------------------

    def _install(self, name: str, policy: Policy, generation: int | None) -> None:
        with self._mutex:
            if generation is not None and generation != self._generation:
                return  # invalidated while loading: what was read may be stale
            self._cache[name] = policy
            self._cache.move_to_end(name)
            if self.cache_size:
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)

    def invalidate(self, key: str) -> None:
        """A storage key of this mount changed (here or in another process)."""
        if key == CACHE_CONFIG:
            self.set_cache_size(self._stored_cache_size())
            return
        for prefix in (POLICY_PREFIX, ARCHIVE_PREFIX):
            if key.startswith(prefix):
                with self._mutex:
                    self._generation += 1
                    self._cache.pop(key[len(prefix):], None)

    def clear(self) -> None:
        with self._mutex:
            self._generation += 1
            self._cache.clear()

    def set_cache_size(self, size: int) -> None:
        with self._mutex:
            self.cache_size = size
            while size and len(self._cache) > size:
                self._cache.popitem(last=False)

    def _stored_cache_size(self) -> int:
        raw = self._storage.get(CACHE_CONFIG)
        if raw is None:
            return 0
        try:
            size = json.loads(raw).get("size", 0)
        except (ValueError, AttributeError):
            return 0
        if not isinstance(size, int) or size < 0:
            return 0
        return size if size == 0 or size >= MIN_CACHE_SIZE else MIN_CACHE_SIZE

    def write_cache_size(self, size: int) -> None:
        self._storage.put(CACHE_CONFIG, json.dumps({"size": size}).encode())
        self.set_cache_size(size)


def needs_upgrade(p: Policy) -> bool:
    """keysutil ``NeedsUpgrade`` (the legacy single ``key`` is migrated at decode)."""
    latest = p.keys.get(p.latest_version)
    return (p.latest_version == 0 and bool(p.keys)) or p.min_decryption_version == 0 or (
        p.archive_version == 0) or (p.convergent_encryption and p.convergent_version == 0) or (
        latest is None or not latest.hmac_key)


def upgrade(p: Policy) -> None:
    """keysutil ``Upgrade`` in memory; the caller persists."""
    if p.latest_version == 0 and p.keys:
        p.latest_version = len(p.keys)
    if p.min_decryption_version == 0:
        p.min_decryption_version = 1
    if p.convergent_encryption and p.convergent_version == 0:
        p.convergent_version = 1
    latest = p.keys.get(p.latest_version)
    if latest is not None and not latest.hmac_key:
        latest.hmac_key = latest.key if p.type.api_name == "hmac" else os.urandom(32)


def handle_archiving(p: Policy, archive: list[KeyEntry]) -> list[KeyEntry] | None:
    """Vault's ``handleArchiving``: move versions below ``min_decryption_version`` out of
    the document into the archive (which keeps every version), or back from it.
    Returns the archive to store, or None when nothing is to be written."""
    has_minimum = p.min_decryption_version in p.keys
    if p.min_decryption_version < 1:
        raise TransitInternalError(
            f"minimum decryption version of {p.min_decryption_version} is less than 1")
    if p.latest_version < 1:
        raise TransitInternalError(f"latest version of {p.latest_version} is less than 1")
    if not has_minimum and p.archive_version != p.latest_version:
        raise TransitInternalError(
            "need to move keys from archive but archive version not up-to-date")
    if p.archive_version > p.latest_version:
        raise TransitInternalError(f"archive version of {p.archive_version} is greater than "
                                   f"the latest version {p.latest_version}")
    if 0 < p.min_encryption_version < p.min_decryption_version:
        raise TransitInternalError(
            f"minimum decryption version of {p.min_decryption_version} is greater than "
            f"minimum encryption version {p.min_encryption_version}")
    if p.min_decryption_version > p.latest_version:
        raise TransitInternalError(
            f"minimum decryption version of {p.min_decryption_version} is greater than the "
            f"latest version {p.latest_version}")
    if not has_minimum:
        for version in range(p.min_decryption_version, p.latest_version + 1):
            index = version - p.min_available_version
            if not 0 <= index < len(archive):
                raise TransitInternalError(f"key version {version} is missing from the archive")
            p.keys[version] = archive[index]
        return None
    base = p.min_available_version
    if len(archive) + base < p.latest_version + 1:
        archive = archive + [KeyEntry() for _ in range(p.latest_version + 1 - base
                                                        - len(archive))]
    for version in range(p.archive_version + 1, p.latest_version + 1):
        archive[version - base] = p.keys[version]
        p.archive_version = version
    if p.archive_min_version < base:
        archive = archive[base - p.archive_min_version:]
        p.archive_min_version = base
    for version in range(p.latest_version - len(p.keys) + 1, p.min_decryption_version):
        p.keys.pop(version, None)
    return archive


__all__ = ["KeyStore", "handle_archiving", "needs_upgrade", "upgrade"]
