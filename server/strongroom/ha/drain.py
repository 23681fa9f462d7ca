"""Requests an active node is serving, so leadership is handed over only between them.

Vault's step-down and shutdown take its state lock, which waits for requests in
flight: a write is never cut off by its own node's step-down. Here the requests run
in worker processes and the lock is released by the owner, so workers count the
requests they serve as active in shared memory, and the owner closes this gate and
waits (briefly) for the count to reach zero before it releases the lock. A request
that arrives while the gate is closed is served as a standby would: forwarded to the
next active node once it is known.

Created in the owner before it forks the arbiter (``GATE``, inherited like
``NODE_SECRET``); only nodes with HA have one.
"""

from __future__ import annotations

import logging
import mmap
import multiprocessing
import time

from strongroom.node.connections import ConnectionCounts
from strongroom.node.shared import robust

log = logging.getLogger(__name__)

DRAIN_WAIT = 2.0  # a request still running after this is cut off by the fence


class ActiveGate:
    """Node-wide count of requests served as active, and whether new ones may start."""

    def __init__(self, slots: int) -> None:
        self._requests = ConnectionCounts(slots)
        self._flag = mmap.mmap(-1, mmap.PAGESIZE)
        self._lock = multiprocessing.get_context("fork").Lock()
        self._claimed = False

    @property
    def closed(self) -> bool:
        return self._flag[0] == 1

    def enter(self) -> bool:
        """A worker starts a request as the active node; False: serve it as a standby."""
        if not self._claimed:
            self._requests.claim()
            self._claimed = True
        with robust(self._lock):  # orders this count against close()'s flag
            if self.closed:
                return False
            self._requests.add(1)
        return True

    def exit(self) -> None:
        self._requests.add(-1)

    def close_and_drain(self, timeout: float = DRAIN_WAIT) -> bool:
        """The owner: no new active requests; wait until none is running."""
        with robust(self._lock):
            self._flag[0] = 1
        deadline = time.monotonic() + timeout
        while self._requests.total() > 0:
            if time.monotonic() > deadline:
                log.warning("event=ha_drain_timeout requests=%d", self._requests.total())
                return False
            time.sleep(0.002)
        return True

    def open(self) -> None:
        """The owner, taking up the active role: requests may run as active again."""
        with robust(self._lock):
            self._flag[0] = 0

    def release(self, pid: int) -> None:
        """The arbiter (``child_exit``): a worker exited; what it was running is over."""
        self._requests.release(pid)


GATE: dict[str, ActiveGate | None] = {"gate": None}
