"""Change counters in anonymous shared memory, inherited by forked workers.

Each slot counts changes to one kind of node state (seal, mounts, policies,
tokens). Whoever changes that state bumps its slot; every worker compares the
slots with what it last applied before serving a request and reloads what
moved, so a change made through any worker is in force in every worker on its
next request, with no polling and no timer.
"""

from __future__ import annotations

import logging
import mmap
import multiprocessing
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Any

log = logging.getLogger(__name__)

_SLOT = struct.Struct("=Q")


class Slot(IntEnum):
    SEAL = 0
    MOUNTS = 1
    POLICIES = 2
    TOKENS = 3


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
        return struct.unpack_from(f"={len(Slot)}Q", self._page, 0)

    def bump(self, slot: Slot) -> int:
        with robust(self._lock):
            value = self.get(slot) + 1
            _SLOT.pack_into(self._page, slot * _SLOT.size, value)
            return value
