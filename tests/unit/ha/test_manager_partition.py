"""HAManager stops acting as active the moment Consul cannot be asked about the lock."""

from __future__ import annotations

import logging
import threading
from typing import Any, cast

import pytest

from strongroom.ha.consul_lock import ConsulLock, LockHolder
from strongroom.ha.fencing import FencedBackend
from strongroom.ha.forwarding import ClusterListener
from strongroom.ha.manager import HAManager
from strongroom.ha.state import HAStatus
from strongroom.physical.inmem import InmemBackend


class PartitionedLock:
    """Grants the lock, then fails every query: the node's Consul agent lost the servers."""

    node_id = "node-a"
    session_ttl = 15.0
    check_ttl = 15.0

    def __init__(self) -> None:
        self.queries = 0
        self.partitioned = threading.Event()

    def register(self, active: bool) -> None: ...
    def heartbeat(self) -> None: ...
    def renew(self, session: str) -> bool:
        return True

    def create_session(self) -> str:
        return "session-1"

    def session_valid(self, session: str) -> bool:
        if self.partitioned.is_set():
            raise ConnectionError("No known Consul servers")
        return True

    def acquire(self, session: str) -> bool:
        return not self.partitioned.is_set()

    def release(self, session: str) -> bool:
        return True

    def holder(self, index: int | None = None, wait: str | None = None) -> LockHolder:
        self.queries += 1
        if self.queries > 2:
            self.partitioned.set()
            raise ConnectionError("No known Consul servers")
        return LockHolder(session="session-1", value=b"node-a", index=self.queries)


class Fence:
    session: str | None = None


class Listener:
    def __init__(self) -> None:
        self.running = False

    def start(self, identity: Any) -> None:
        self.running = True

    def stop(self) -> None:
        self.running = False


class Statuses(list[HAStatus]):
    """The statuses the manager published, with an event for its first demotion."""

    def __init__(self) -> None:
        super().__init__()
        self.demoted = threading.Event()

    def append(self, status: HAStatus) -> None:
        super().append(status)
        if not status.active and any(s.active for s in self):
            self.demoted.set()


def started_manager(lock: PartitionedLock) -> tuple[HAManager, Fence, Listener, Statuses]:
    fence, listener = Fence(), Listener()
    statuses = Statuses()
    manager = HAManager(cast(ConsulLock, lock), InmemBackend(), cast(FencedBackend, fence),
                        "https://a:8200", "https://a:8201", statuses.append,
                        cast(ClusterListener, listener))
    manager.start()
    return manager, fence, listener, statuses


def test_losing_consul_while_active_drops_the_fence_and_the_listener() -> None:
    lock = PartitionedLock()
    manager, fence, listener, statuses = started_manager(lock)
    try:
        assert lock.partitioned.wait(30)
        # After the failed query the node is no longer active, and stays so while partitioned.
        assert statuses.demoted.wait(30), statuses
        assert not statuses[-1].active
        assert fence.session is None
        assert not listener.running
    finally:
        manager.stop()


class HangingLock(PartitionedLock):
    """Grants the lock, then its query hangs: the local agent cannot reach any server."""

    check_ttl = 0.5

    def __init__(self) -> None:
        super().__init__()
        self.release_hang = threading.Event()
        self.hanging = threading.Event()  # a lock query is stuck right now

    def holder(self, index: int | None = None, wait: str | None = None) -> LockHolder:
        self.queries += 1
        if self.queries > 1:
            self.partitioned.set()
            self.hanging.set()
            try:
                self.release_hang.wait(120)  # until the test has seen what it needs
            finally:
                self.hanging.clear()
            raise ConnectionError("rpc error: timeout")
        return LockHolder(session="session-1", value=b"node-a", index=self.queries)


def test_an_unconfirmed_lock_demotes_the_node_while_the_query_still_hangs(
        caplog: pytest.LogCaptureFixture) -> None:
    """The watchdog demotes the node after check_ttl without confirmation, while the lock
    query is still stuck: the query is held until the test lets it go, so the demotion
    cannot have come from the query failing."""
    caplog.set_level(logging.WARNING, logger="strongroom.ha.manager")
    lock = HangingLock()
    manager, fence, listener, statuses = started_manager(lock)
    try:
        assert lock.partitioned.wait(30)
        assert statuses.demoted.wait(30), statuses
        assert lock.hanging.is_set()  # demoted while the query still hangs
        assert not manager.status.active
        assert fence.session is None and not listener.running
        assert any("event=ha_lock_unconfirmed" in r.getMessage() for r in caplog.records)
    finally:
        lock.release_hang.set()
        manager.stop()
