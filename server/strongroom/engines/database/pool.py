"""A small, thread-safe connection pool: one per database config in each process.

At most ``size`` connections are open (Vault's max_open_connections, default 4), at
most ``max_idle`` of them kept idle (max_idle_connections), none older than
``max_lifetime`` seconds reused (max_connection_lifetime, 0: no limit); an idle one
is checked before reuse (Vault pings) and dropped if the server closed it.
``close()`` closes every idle connection at once and each busy one when it comes
back, so a removed config or a disabled mount leaves nothing open on the server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
C = TypeVar("C")
WAIT_SECONDS = 30.0


class PoolClosedError(Exception):
    """The pool was closed (config changed or removed, mount going away)."""


class PoolTimeoutError(Exception):
    """Every connection stayed busy for WAIT_SECONDS."""


class Pool(Generic[C]):
    def __init__(self, connect: Callable[[], C], alive: Callable[[C], bool],
                 close: Callable[[C], None], size: int, max_idle: int = 0,
                 max_lifetime: float = 0.0) -> None:
        self._connect, self._alive, self._close = connect, alive, close
        self._slots = threading.BoundedSemaphore(max(1, size))
        self._max_idle = min(max_idle, size) if max_idle > 0 else max(1, size)
        self._max_lifetime = max_lifetime
        self._born: dict[int, float] = {}
        self._lock = threading.Lock()
        self._idle: list[C] = []
        self._open = 0
        self._closed = False

    @property
    def open_connections(self) -> int:
        return self._open

    @contextmanager
    def connection(self) -> Iterator[C]:
        """A connection for the block; broken ones are discarded, not returned."""
        if not self._slots.acquire(timeout=WAIT_SECONDS):
            raise PoolTimeoutError("timed out waiting for a database connection")
        try:
            conn = self._take()
            healthy = False
            try:
                yield conn
                healthy = True
            finally:
                self._give_back(conn, healthy)
        finally:
            self._slots.release()

    def _take(self) -> C:
        while True:
            with self._lock:
                if self._closed:
                    raise PoolClosedError("the connection was closed")
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                break
            if not self._too_old(conn) and self._alive(conn):
                return conn
            self._discard(conn)
        fresh = self._connect()
        with self._lock:
            self._open += 1
            self._born[id(fresh)] = time.monotonic()
            closed = self._closed
        if closed:  # closed while we were connecting
            self._discard(fresh)
            raise PoolClosedError("the connection was closed")
        return fresh

    def _give_back(self, conn: C, healthy: bool) -> None:
        with self._lock:
            if (healthy and not self._closed and len(self._idle) < self._max_idle
                    and not self._too_old(conn)):
                self._idle.append(conn)
                return
        self._discard(conn)

    def _too_old(self, conn: C) -> bool:
        if self._max_lifetime <= 0:
            return False
        return time.monotonic() - self._born.get(id(conn), 0.0) > self._max_lifetime

    def _discard(self, conn: C) -> None:
        with self._lock:
            self._open -= 1
            self._born.pop(id(conn), None)
        try:
            self._close(conn)
        except Exception as exc:  # noqa: BLE001 - closing a dead connection may fail
            log.debug("event=db_connection_close_failed error=%s", type(exc).__name__)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            self._discard(conn)
