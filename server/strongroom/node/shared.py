"""Node-wide state in anonymous shared memory, inherited by forked workers.

Two primitives, both created before the first fork:

* :class:`SharedCounters`: 64-bit counters. One slot is left, the seal
  generation: it counts changes of the node's seal and HA state, which are not
  storage keys. Every worker compares it with what it last applied before
  serving a request.
* :class:`ChangeRing`: the storage keys written on this node, in order, as
  records ``(op, key)`` in a ring of bytes. The write notifier
  (physical/notify.py) appends one record per key it writes; every process
  keeps its own cursor and, before serving a request, reads the records past it
  and invalidates what they name (cached storage entries, policies, mount
  tables). A cursor the ring has lapped can no longer tell what changed: its
  reader invalidates everything.

When nothing changed, checking either is one 8-byte read of shared memory.
"""

from __future__ import annotations

import functools
import logging
import mmap
import multiprocessing
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import IntEnum
from typing import Any

log = logging.getLogger(__name__)

_SLOT = struct.Struct("=Q")


class Slot(IntEnum):
    SEAL = 0


# The critical sections these locks guard are a few instructions long: a holder that
# keeps one this long is a process that died inside it (SIGKILL, OOM), and a
# process-shared semaphore is not released by the death of its holder.
DEAD_HOLDER_AFTER = 2.0


def acquire_robustly(lock: Any) -> None:
    """Take a process-shared ``multiprocessing`` lock, from a dead holder if need be.

    Without this, a worker killed inside ``bump`` would leave every later bump, in every
    process of the node, blocked for good: a half-alive node. (A function, not a context
    manager: it is on every write's path.)
    """
    if lock.acquire(False) or lock.acquire(timeout=DEAD_HOLDER_AFTER):
        return
    log.warning("event=shared_lock_taken_over seconds=%.1f", DEAD_HOLDER_AFTER)
    try:
        lock.release()  # a plain Lock may be released by any process
    except ValueError:
        pass  # released meanwhile
    lock.acquire()


@contextmanager
def robust(lock: Any) -> Iterator[None]:
    """Hold a process-shared lock (see ``acquire_robustly``)."""
    acquire_robustly(lock)
    try:
        yield
    finally:
        lock.release()


_SNAPSHOT = struct.Struct(f"={len(Slot)}Q")


class SharedCounters:
    """64-bit counters in a MAP_SHARED anonymous page; create before forking."""

    def __init__(self) -> None:
        self._page = mmap.mmap(-1, mmap.PAGESIZE)
        # A process-shared lock makes bumps atomic: two workers bumping at once
        # must both be seen, never collapse into one increment.
        self._lock = multiprocessing.get_context("fork").Lock()
        for slot in Slot:
            _SLOT.pack_into(self._page, slot * _SLOT.size, 1)

    def get(self, slot: Slot) -> int:
        return int(_SLOT.unpack_from(self._page, slot * _SLOT.size)[0])

    def snapshot(self) -> tuple[int, ...]:
        return _SNAPSHOT.unpack_from(self._page, 0)

    def bump(self, slot: Slot) -> int:
        with robust(self._lock):
            value = self.get(slot) + 1
            _SLOT.pack_into(self._page, slot * _SLOT.size, value)
            return value


class Op(IntEnum):
    """What a ring record says happened to its key."""

    PAD = 0  # filler up to the ring's end: the next record starts at offset 0
    PUT = 1
    DELETE = 2
    RESET = 3  # anything may have changed (no key): every reader invalidates everything


# A record: key length, op, padding; then the UTF-8 key, padded to a multiple of 8 so
# every header is aligned and the free space at the ring's end is a multiple of 8 too.
_RECORD = struct.Struct("=HBx4x")
_HEAD = struct.Struct("=Q")
_HEADER_BYTES = 64  # the head, alone on its cache line
DEFAULT_RING_BYTES = 1 << 20  # ~10,000 records of a typical key: seconds of writes

Change = tuple[Op, str]
Lapped = None
"""What :meth:`ChangeRing.read` returns when the ring overwrote records not yet read."""


def _aligned(size: int) -> int:
    return (size + 7) & ~7


class ChangeRing:
    """An append-only ring of ``(op, key)`` records in shared memory; create before forking.

    Positions are byte offsets since the ring was made (they only grow); the
    record at position ``p`` lives at ``p % capacity``. ``head`` is where the
    next record goes. Writers append under a process-shared lock and move the
    head last; readers read the head without the lock (the fast path) and take
    the lock only to copy records out, so they never see a torn one.
    """

    def __init__(self, capacity: int = DEFAULT_RING_BYTES) -> None:
        if capacity < 256 or capacity % 8:
            raise ValueError("ring capacity must be a multiple of 8, at least 256")
        self.capacity = capacity
        self._page = mmap.mmap(-1, _HEADER_BYTES + capacity)
        self._data = memoryview(self._page)[_HEADER_BYTES:]
        self._lock = multiprocessing.get_context("fork").Lock()
        # ``read_head()[0]`` is the head: what readers on the hot path call, bound once.
        self.read_head: Callable[[], tuple[int]] = functools.partial(
            _HEAD.unpack_from, self._page, 0)

    @property
    def head(self) -> int:
        """The position after the last record written (one memory read)."""
        return self.read_head()[0]

    def append(self, changes: Sequence[Change]) -> tuple[int, int]:
        """Append ``changes`` in order; returns the span ``[start, end)`` they took.

        A key too long to fit in half the ring is recorded as a RESET: readers then
        invalidate everything, which is never wrong, only slower.
        """
        encoded = []
        for op, key in changes:
            raw = key.encode("utf-8", "surrogatepass")
            if _aligned(_RECORD.size + len(raw)) > self.capacity // 2 or len(raw) > 0xFFFF:
                op, raw = Op.RESET, b""
            encoded.append((op, raw))
        with robust(self._lock):
            start = position = self.head
            for op, raw in encoded:
                size = _aligned(_RECORD.size + len(raw))
                offset = position % self.capacity
                room = self.capacity - offset
                if room < size:
                    # Never split a record: pad to the end, start again at offset 0.
                    _RECORD.pack_into(self._data, offset, room - _RECORD.size, Op.PAD)
                    position += room
                    offset = 0
                _RECORD.pack_into(self._data, offset, len(raw), op)
                body = offset + _RECORD.size
                self._data[body:body + len(raw)] = raw
                position += size
            # Published last: a reader never sees a head past a record being written.
            _HEAD.pack_into(self._page, 0, position)
        return start, position

    def read(self, since: int) -> tuple[int, list[tuple[int, Op, str]] | None]:
        """The records from position ``since`` to the head.

        Returns:
            ``(head, records)``, each record ``(position, op, key)``; ``records`` is
            None (:data:`Lapped`) if some of them were already overwritten.
        """
        if self.head == since:
            return since, []
        with robust(self._lock):
            head = self.head
            if head - since > self.capacity or since > head:
                return head, Lapped
            records: list[tuple[int, Op, str]] = []
            position = since
            while position < head:
                offset = position % self.capacity
                length, op = _RECORD.unpack_from(self._data, offset)
                if op == Op.PAD:
                    position += self.capacity - offset
                    continue
                body = offset + _RECORD.size
                key = bytes(self._data[body:body + length]).decode("utf-8", "surrogatepass")
                records.append((position, Op(op), key))
                position += _aligned(_RECORD.size + length)
        return head, records
