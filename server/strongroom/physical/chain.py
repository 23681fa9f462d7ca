"""The storage chain of a process, assembled in one place for every configuration.

From the bottom up::

    physical    inmem | file | consul             (what the config names)
    fencing     writes carry the HA lock session  (consul storage only)
    notifier    publishes every written key       (physical/notify.py)
    cache       exact read cache                  (node-private storage shared by
                                                   several processes: file, tmpfs inmem)
    barrier     built by its owner on ``top``     (core, coordinator)

Each process of a node builds its own chain (its own fencing session, cache and
cursors) around the one :class:`~strongroom.node.shared.ChangeRing` the node
created before forking. The core and the HA manager receive the chain's parts
by name, so nothing above needs to know which backend lies below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strongroom.config import ServerConfig, StorageConfig
from strongroom.ha.fencing import FencedBackend
from strongroom.node.shared import ChangeRing
from strongroom.physical.base import Backend, Fenced
from strongroom.physical.cache import CachingBackend
from strongroom.physical.consul import ConsulBackend
from strongroom.physical.file import FileBackend
from strongroom.physical.inmem import InmemBackend
from strongroom.physical.notify import ChangeFeed, WriteNotifier

LOCK_KEY = "core/lock"  # relative to the storage path, like every key


@dataclass(frozen=True)
class StorageChain:
    physical: Backend
    fencing: Fenced | None
    notifier: WriteNotifier
    cache: CachingBackend | None
    # Before any other process writes (the node's first process, at start): undo what
    # a crash mid-write left behind (a file backend's temp files). Returns a count.
    recover: Callable[[], int] | None = None

    @property
    def top(self) -> Backend:
        """What the barrier is built on."""
        return self.cache if self.cache is not None else self.notifier

    def set_session(self, session: str | None) -> None:
        """This process's writes carry ``session`` (the active node's), or none."""
        if self.fencing is not None:
            self.fencing.session = session

    def changes(self) -> ChangeFeed:
        """A new cursor on the node's changes, starting now."""
        return ChangeFeed(self.notifier.ring)


def ha_storage(config: ServerConfig) -> StorageConfig | None:
    """The storage that carries the HA lock, if this node runs highly available."""
    if config.ha_storage is not None and config.ha_storage.type == "consul":
        return config.ha_storage
    if config.storage.type == "consul":
        return config.storage
    return None


def build_physical(storage: StorageConfig, inmem_dir: str | None = None) -> Backend:
    """The bottom layer. ``inmem_dir``: inmem kept in a tmpfs directory a node's
    processes share (a worker's death loses nothing), not in one process's heap."""
    if storage.type == "inmem":
        return InmemBackend() if inmem_dir is None else FileBackend(inmem_dir, durable=False)
    if storage.type == "file":
        return FileBackend(storage.options["path"])
    if storage.type == "consul":
        return ConsulBackend(storage.options)
    raise ValueError(f"storage type {storage.type!r} is not available in this build")


def build_chain(config: ServerConfig, ring: ChangeRing | None = None, *,
                inmem_dir: str | None = None, physical: Backend | None = None) -> StorageChain:
    """This process's storage chain.

    Args:
        config: The node's configuration (``storage`` and ``ha_storage``).
        ring: The node's change ring, created before forking when the node has
            several processes; None for a node of one process (a private ring).
        inmem_dir: Where a multi-process node keeps ``inmem`` storage.
        physical: The bottom layer to use instead of the configured one (tests).
    """
    shared = ring is not None
    ring = ring if ring is not None else ChangeRing()
    if physical is None:
        physical = build_physical(config.storage, inmem_dir)
    fencing: Fenced | None = None
    below_notifier: Backend = physical
    if config.storage.type == "consul":
        # Consul can condition a write on the lock (check-session in a transaction).
        fencing = FencedBackend(physical, LOCK_KEY)  # type: ignore[arg-type]
        below_notifier = fencing
    notifier = WriteNotifier(below_notifier, ring)
    # Storage only this node writes: its file directory (unless an ha_storage says several
    # nodes share it, whose writes the ring never sees) or the tmpfs inmem directory.
    private = ((config.storage.type == "file" and ha_storage(config) is None)
               or (config.storage.type == "inmem" and inmem_dir is not None))
    # Cached where it pays and stays exact: several processes read it from disk.
    cache = CachingBackend(notifier) if shared and private else None
    recover = (physical.remove_temp_files
               if private and isinstance(physical, FileBackend) else None)
    return StorageChain(physical, fencing, notifier, cache, recover)


if TYPE_CHECKING:
    # Every implementation checked against its protocol by mypy (never run).
    from strongroom.barrier.barrier import AESGCMBarrier
    from strongroom.barrier.view import StorageView
    from strongroom.ha.consul_lock import ConsulLock
    from strongroom.physical.base import HABackend, Lock, Paged, Transactional

    def _conformance(consul: ConsulBackend, ring: ChangeRing) -> None:
        _inmem: Transactional = InmemBackend()
        _file: Transactional = FileBackend("")
        _paged: Paged = FileBackend("")
        _consul: Transactional = consul
        _ha: HABackend = consul
        _lock: Lock = ConsulLock(consul.client, LOCK_KEY, "node")
        fenced: Fenced = FencedBackend(consul, LOCK_KEY)
        notifier: Transactional = WriteNotifier(fenced, ring)
        _cache: Transactional = CachingBackend(WriteNotifier(notifier, ring))
        barrier: Transactional = AESGCMBarrier(notifier)
        _view: Transactional = StorageView(barrier, "sys/")
        paged: list[Paged] = [WriteNotifier(fenced, ring), AESGCMBarrier(notifier),
                              CachingBackend(WriteNotifier(notifier, ring))]
        paged.append(StorageView(barrier, "sys/"))
