"""Open client connections of every worker of a node, counted in shared memory.

``max_connections`` bounds a node, not a worker: the kernel hands connections to
workers unevenly, so a per-worker share would refuse clients while the node is far
below its bound. Each worker owns one slot (its PID and its count) and alone writes
it; any worker sums the slots to decide. The arbiter frees a dead worker's slot
(gunicorn's ``child_exit``), so a crash cannot leak connections it once held.
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import struct

from strongroom.node.runtime import pid_alive
from strongroom.node.shared import robust

_SLOT = struct.Struct("=qq")  # pid, open connections


class ConnectionCounts:
    """Per-worker connection counts on an anonymous shared page; create before forking."""

    def __init__(self, slots: int) -> None:
        self._slots = slots
        self._page = mmap.mmap(-1, max(mmap.PAGESIZE, slots * _SLOT.size))
        self._lock = multiprocessing.get_context("fork").Lock()
        self._mine = -1
        self._count = 0
        self._all = struct.Struct(f"={2 * slots}q")

    def claim(self) -> None:
        """Take a free slot for this process (a worker, once, before it serves)."""
        pid = os.getpid()
        with robust(self._lock):
            for index in range(self._slots):
                owner, _ = _SLOT.unpack_from(self._page, index * _SLOT.size)
                if owner == 0 or not pid_alive(owner):
                    _SLOT.pack_into(self._page, index * _SLOT.size, pid, 0)
                    self._mine, self._count = index, 0
                    return
        raise RuntimeError("no free connection slot for this worker")

    def release(self, pid: int) -> None:
        """Free the slot of a worker that exited (the arbiter, from ``child_exit``)."""
        with robust(self._lock):
            for index in range(self._slots):
                owner, _ = _SLOT.unpack_from(self._page, index * _SLOT.size)
                if owner == pid:
                    _SLOT.pack_into(self._page, index * _SLOT.size, 0, 0)

    def add(self, delta: int) -> None:
        """This worker opened (+1) or closed (-1) a connection."""
        if self._mine < 0:
            return
        self._count += delta
        # One writer per slot, an aligned 8-byte store: readers need no lock.
        struct.pack_into("=q", self._page, self._mine * _SLOT.size + 8, self._count)

    def admit(self, bound: int) -> bool:
        """Count one more connection of this worker unless the node already holds ``bound``.

        Checked and counted under the lock: two workers that each saw ``bound - 1`` would
        otherwise both take the last place."""
        with robust(self._lock):
            if self.total() >= bound:
                return False
            self.add(1)
            return True

    def total(self) -> int:
        """Open connections across the node's live workers."""
        values = self._all.unpack_from(self._page, 0)
        return sum(values[1::2])

