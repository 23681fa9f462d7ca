"""A node that wins the lock but cannot take up the active role gives the lock back.

Seen in the consul tests: the cluster port was taken (EADDRINUSE) when the node
became active; it kept the lock, unserved, until its session expired (~20 s
with no active node).
"""

from __future__ import annotations

import threading
import time
from typing import Any, cast

from strongroom.ha.consul_lock import ConsulLock, LockHolder
from strongroom.ha.fencing import FencedBackend
from strongroom.ha.forwarding import ClusterListener
from strongroom.ha.manager import HAManager
from strongroom.ha.state import HAStatus
from strongroom.physical.inmem import InmemBackend


class OneLock:
    """A lock on an in-memory 'Consul': acquire/release/holder by session."""

    node_id = "node-a"
    session_ttl = 15.0
    check_ttl = 15.0

    def __init__(self) -> None:
        self.holder_session: str | None = None
        self.sessions = 0
        self.released: list[str] = []
        self.changed = threading.Condition()

    def register(self, active: bool) -> None: ...
    def deregister(self) -> None: ...
    def heartbeat(self) -> None: ...
    def renew(self, session: str) -> bool:
        return True

    def destroy(self, session: str) -> None: ...

    def session_valid(self, session: str) -> bool:
        return True

    def create_session(self) -> str:
        self.sessions += 1
        return f"session-{self.sessions}"

    def acquire(self, session: str) -> bool:
        with self.changed:
            if self.holder_session in (None, session):
                self.holder_session = session
                return True
            return False

    def release(self, session: str) -> bool:
        with self.changed:
            self.released.append(session)
            if self.holder_session == session:
                self.holder_session = None
                self.changed.notify_all()
                return True
            return False

    def holder(self, index: int | None = None, wait: str | None = None) -> LockHolder:
        with self.changed:
            if index is not None:
                self.changed.wait(0.05)
            held = self.holder_session
            return LockHolder(held, b"node-a" if held else None, 1)


class Fence:
    session: str | None = None


class PortTaken:
    def __init__(self) -> None:
        self.starts = 0

    def start(self, identity: Any) -> None:
        self.starts += 1
        raise OSError(98, "Address already in use")

    def stop(self) -> None: ...


def test_a_node_that_cannot_open_its_cluster_port_gives_the_lock_back() -> None:
    lock, fence, listener = OneLock(), Fence(), PortTaken()
    statuses: list[HAStatus] = []
    manager = HAManager(cast(ConsulLock, lock), InmemBackend(), cast(FencedBackend, fence),
                        "https://a:8200", "https://a:8201", statuses.append,
                        cast(ClusterListener, listener))
    manager.start()
    try:
        deadline = time.monotonic() + 5
        while not lock.released and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lock.released[:1] == ["session-1"]  # handed back at once, not at session expiry
        assert listener.starts >= 1
        assert fence.session is None
        assert not any(s.active for s in statuses)
    finally:
        manager.stop()


class ElectingLock(OneLock):
    """Consul loses its leader while this node is active: lock queries and the release
    fail for a moment, the session (holding the lock) stays valid throughout."""

    def __init__(self) -> None:
        super().__init__()
        self.electing = threading.Event()

    def holder(self, index: int | None = None, wait: str | None = None) -> LockHolder:
        if self.electing.is_set():
            self.electing.clear()  # over after this one failure
            raise ConnectionError("Unexpected response code: 500 (No cluster leader)")
        return super().holder(index, wait)

    def release(self, session: str) -> bool:
        raise ConnectionError("Unexpected response code: 500 (No cluster leader)")


class Listener:
    def start(self, identity: Any) -> None: ...
    def stop(self) -> None: ...


def test_after_a_consul_election_the_node_takes_up_its_lock_again() -> None:
    """Its session still holds the lock: a new session would leave the cluster without an
    active node until Consul expired the old one (seen: ~31 s after the Consul leader
    was killed, bench/failover.py)."""
    lock, fence = ElectingLock(), Fence()
    statuses: list[HAStatus] = []
    manager = HAManager(cast(ConsulLock, lock), InmemBackend(), cast(FencedBackend, fence),
                        "https://a:8200", "https://a:8201", statuses.append,
                        cast(ClusterListener, Listener()))
    manager.start()
    try:
        deadline = time.monotonic() + 5
        while not manager.status.active and time.monotonic() < deadline:
            time.sleep(0.01)
        assert manager.status.active
        lock.electing.set()
        while lock.electing.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen = len(statuses)
        while time.monotonic() < deadline and not any(s.active for s in statuses[seen:]):
            time.sleep(0.01)
        assert any(not s.active for s in statuses[:seen + 1])  # it did drop the role
        assert manager.status.active and fence.session == "session-1"
        assert lock.sessions == 1  # the same session, never a second one
    finally:
        manager.stop()
