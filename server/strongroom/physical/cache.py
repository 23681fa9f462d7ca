"""A read cache over node-private storage (file, inmem), kept exact across processes.

Every process of a node (the master and its workers) writes through its own
``CachingBackend``, and every write bumps one generation number in shared memory.
A process drops its whole cache whenever the generation moved for any write but
its own, so a read never returns a value older than the last completed write,
whoever made it. Entries are barrier ciphertext, as stored: caching adds no
plaintext to memory.

Only for storage that this node alone writes: Consul is shared by other nodes,
whose writes this counter never sees.
"""

from __future__ import annotations

import mmap
import multiprocessing
import struct
import threading
from collections.abc import Callable, Sequence

from strongroom.node.shared import acquire_robustly
from strongroom.physical.base import Backend, Op, apply_ops

_COUNTER = struct.Struct("=Q")
# Bounds per process: small entries (tokens, policies, mount tables, most secrets) are
# what every request reads; a large value is read rarely and would crowd them out.
DEFAULT_MAX_BYTES = 32 << 20
MAX_ENTRY_BYTES = 64 << 10


class WriteGeneration:
    """A 64-bit write counter in anonymous shared memory; create before forking."""

    def __init__(self) -> None:
        self._page = mmap.mmap(-1, mmap.PAGESIZE)
        self._lock = multiprocessing.get_context("fork").Lock()

    @property
    def value(self) -> int:
        return int(_COUNTER.unpack_from(self._page, 0)[0])

    def bump(self) -> int:
        acquire_robustly(self._lock)
        try:
            value = _COUNTER.unpack_from(self._page, 0)[0] + 1
            _COUNTER.pack_into(self._page, 0, value)
        finally:
            self._lock.release()
        return int(value)


class CachingBackend:
    """``inner`` with its reads cached, invalidated by any other process's write."""

    def __init__(self, inner: Backend, generation: WriteGeneration,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._inner = inner
        self._generation = generation
        self._max_bytes = max_bytes
        self._bytes = 0
        self._cache: dict[str, bytes | None] = {}
        self._seen = generation.value
        # Serialises this process's writes with their cache updates, so two threads
        # writing one key cannot leave the older value cached.
        self._lock = threading.Lock()

    @property
    def inner(self) -> Backend:
        return self._inner

    def get(self, key: str) -> bytes | None:
        with self._lock:
            current = self._generation.value
            if current != self._seen:
                self._clear()
                self._seen = current
            if key in self._cache:
                return self._cache[key]
        value = self._inner.get(key)
        with self._lock:
            # Kept only if no write (here or elsewhere) happened during the read.
            if self._generation.value == current == self._seen:
                self._remember(key, value)
        return value

    def _remember(self, key: str, value: bytes | None) -> None:
        """Cache ``key``'s value (None: known absent), within the byte budget."""
        size = len(key) + (len(value) if value is not None else 0)
        if key in self._cache:
            old = self._cache.pop(key)
            self._bytes -= len(key) + (len(old) if old is not None else 0)
        if value is not None and len(value) > MAX_ENTRY_BYTES:
            return
        if self._bytes + size > self._max_bytes:
            self._clear()
        self._cache[key] = value
        self._bytes += size

    def _clear(self) -> None:
        self._cache.clear()
        self._bytes = 0

    def list(self, prefix: str) -> list[str]:
        return self._inner.list(prefix)

    def put(self, key: str, value: bytes) -> None:
        self._write(lambda: self._inner.put(key, value), [("put", key, value)])

    def delete(self, key: str) -> None:
        self._write(lambda: self._inner.delete(key), [("delete", key, None)])

    def transaction(self, ops: Sequence[Op]) -> None:
        self._write(lambda: apply_ops(self._inner, ops), ops)

    def _write(self, apply: Callable[[], None], ops: Sequence[Op]) -> None:
        with self._lock:
            try:
                apply()
            except BaseException:
                # What landed is unknown: forget everything, and make every process forget.
                self._clear()
                self._seen = self._generation.bump()
                raise
            new = self._generation.bump()
            own_only = new == self._seen + 1
            self._seen = new
            if not own_only:
                # Another process wrote since our last look, maybe to these very keys and
                # after us on disk (its rename later, its bump earlier): what storage holds
                # now is unknown, so nothing is remembered.
                self._clear()
                return
            for verb, key, value in ops:
                self._remember(key, value if verb == "put" else None)
