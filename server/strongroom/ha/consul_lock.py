"""The Consul side of leadership: a health check, a session bound to it, the lock key.

A node keeps a TTL check passing while it lives (registered as its service's
check when service registration is on). Its session is bound to that check
and to serfHealth with no lock delay, so when the process dies the check goes
critical within ``check_ttl`` seconds, Consul invalidates the session, the lock
is released, and a standby watching the key takes over at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import consul

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockHolder:
    session: str | None
    value: bytes | None
    index: int


class ConsulLock:
    def __init__(
        self,
        client: consul.Consul,
        lock_key: str,
        node_id: str,
        session_ttl: int = 15,
        check_ttl: int = 3,
        service: str | None = "strongroom",
        service_address: str = "",
        service_port: int = 0,
        service_tags: tuple[str, ...] = (),
    ) -> None:
        self.client = client
        self.lock_key = lock_key
        self.node_id = node_id
        self.session_ttl = max(10, session_ttl)  # Consul's minimum
        self.check_ttl = check_ttl
        self.service = service
        self._service_id = f"{service}-{node_id}" if service else ""
        self._address = service_address
        self._port = service_port
        self._extra_tags = service_tags
        self.check_id = (f"service:{self._service_id}" if service
                         else f"strongroom-{node_id}-alive")

    # -- liveness -----------------------------------------------------------

    def register(self, active: bool) -> None:
        """(Re)register the node's service or bare check, tagged active or standby."""
        check = consul.Check.ttl(f"{self.check_ttl}s")
        if self.service:
            tags = ["active" if active else "standby", *self._extra_tags]
            self.client.agent.service.register(
                self.service, service_id=self._service_id, address=self._address or None,
                port=self._port or None, tags=tags, check=check)
        else:
            self.client.agent.check.register(self.check_id, check=check,
                                             check_id=self.check_id)
        self.heartbeat()

    def heartbeat(self) -> None:
        self.client.agent.check.ttl_pass(self.check_id)

    def deregister(self) -> None:
        if self.service:
            self.client.agent.service.deregister(self._service_id)
        else:
            self.client.agent.check.deregister(self.check_id)

    # -- session and lock -----------------------------------------------------

    def create_session(self) -> str:
        session: str = self.client.session.create(
            name=f"strongroom-{self.node_id}", checks=["serfHealth", self.check_id],
            lock_delay=0, ttl=self.session_ttl, behavior="release")
        return session

    def session_valid(self, session: str) -> bool:
        """Whether Consul still knows ``session`` (it may still hold the lock)."""
        _, info = self.client.session.info(session)
        return info is not None

    def renew(self, session: str) -> bool:
        return self.client.session.renew(session) is not None

    def destroy(self, session: str) -> None:
        self.client.session.destroy(session)

    def acquire(self, session: str) -> bool:
        return bool(self.client.kv.put(self.lock_key, self.node_id, acquire=session))

    def release(self, session: str) -> bool:
        return bool(self.client.kv.put(self.lock_key, self.node_id, release=session))

    def holder(self, index: int | None = None, wait: str | None = None) -> LockHolder:
        """The lock's holder; with ``index``, blocks until it changes or ``wait`` passes."""
        new_index, entry = self.client.kv.get(self.lock_key, index=index, wait=wait)
        if entry is None:
            return LockHolder(None, None, int(new_index or 0))
        return LockHolder(entry.get("Session"), entry.get("Value"), int(new_index or 0))
