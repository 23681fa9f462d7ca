"""Consul sessions and session-bound locks: the primitives of HA leader election.

Mixed into :class:`~strongroom.physical.consul.ConsulBackend`, which supplies the
client, the key mapping (lock keys are relative to the backend's ``path``, like
every other key) and the error translation. The HA code builds on these:
``create_session`` + ``acquire`` to take the lock, ``renew_session`` to keep it,
``watch`` to notice losing it, and the backend's ``put_fenced`` /
``delete_fenced`` / ``transaction`` so that a node which lost the lock cannot
write any more.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from consul.exceptions import NotFound

_T = TypeVar("_T")
_SESSION_ID = re.compile(r"\A[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\Z")
MIN_SESSION_TTL, MAX_SESSION_TTL = 10, 86400  # seconds, Consul's bounds


def check_session_id(session_id: str) -> None:
    """Session ids go into URL paths and transactions: accept UUIDs only.

    Raises:
        ValueError: If ``session_id`` is not a UUID.
    """
    if not isinstance(session_id, str) or not _SESSION_ID.match(session_id):
        raise ValueError("consul session id must be a UUID")


class ConsulSessions:
    """Session and lock helpers; the host class supplies ``_client``, ``_full`` and ``_call``."""

    _client: Any

    def _full(self, key: str) -> str:
        raise NotImplementedError

    def _call(self, operation: str, what: str, fn: Callable[[], _T], bounded: bool = True) -> _T:
        raise NotImplementedError

    def create_session(self, name: str, ttl_seconds: int, lock_delay_seconds: int = 0,
                       node_checks: bool = True) -> str:
        """Create a session whose locks are released when it is invalidated.

        Args:
            name: A human-readable name (shown by ``consul operator`` tooling).
            ttl_seconds: Invalidate the session unless renewed within this many
                seconds (10-86400); 0 for no TTL.
            lock_delay_seconds: How long Consul refuses to re-grant a lock this
                session held after it is invalidated (Consul's default is 15 s).
            node_checks: Tie the session to the agent's node health (serfHealth),
                so it dies with the node; False leaves only the TTL.

        Returns:
            The session id.

        Raises:
            ValueError: If the TTL is out of range, or neither TTL nor checks bind
                the session.
            StorageError: If Consul fails or refuses (ACL ``session:write``).
        """
        if ttl_seconds and not MIN_SESSION_TTL <= ttl_seconds <= MAX_SESSION_TTL:
            raise ValueError(f"session TTL must be {MIN_SESSION_TTL}-{MAX_SESSION_TTL} seconds")
        if not ttl_seconds and not node_checks:
            raise ValueError("a session needs a TTL or node checks, or it never expires")
        if lock_delay_seconds < 0:
            raise ValueError("lock delay must not be negative")
        checks: list[str] | None = None if node_checks else []  # None: serfHealth
        session_id: str = self._call("create", f"session {name!r}", lambda: (
            self._client.session.create(name=name, ttl=ttl_seconds or None, checks=checks,
                                        lock_delay=lock_delay_seconds, behavior="release")))
        return session_id

    def renew_session(self, session_id: str) -> bool:
        """Reset a session's TTL.

        Returns:
            True if renewed; False if the session no longer exists (expired,
            destroyed, or invalidated by a failed node check).
        """
        check_session_id(session_id)

        def renew() -> bool:
            try:
                self._client.session.renew(session_id)
            except NotFound:
                return False
            return True

        return self._call("renew", f"session {session_id}", renew)

    def destroy_session(self, session_id: str) -> None:
        """Destroy a session, releasing its locks; destroying a dead session is fine."""
        check_session_id(session_id)
        self._call("destroy", f"session {session_id}",
                   lambda: self._client.session.destroy(session_id))

    def acquire(self, key: str, session_id: str, value: bytes) -> bool:
        """Try to take the lock ``key`` for ``session_id``, storing ``value`` in it.

        Returns:
            True if the session now holds the lock (re-acquiring a held lock
            succeeds and updates the value); False if another session holds it
            or the lock delay of a previous holder has not yet passed.

        Raises:
            StorageError: If Consul fails, e.g. the session is not valid.
        """
        check_session_id(session_id)
        full = self._full(key)
        return bool(self._call("acquire lock", repr(key), lambda: self._client.kv.put(
            full, bytes(value), acquire=session_id)))

    def release(self, key: str, session_id: str) -> bool:
        """Release the lock ``key`` if ``session_id`` holds it, keeping its value.

        Returns:
            True if released; False if ``session_id`` did not hold it.
        """
        check_session_id(session_id)
        value, holder = self.read_lock(key)
        if holder != session_id:
            return False
        full = self._full(key)
        # A release PUT also writes its body as the value: send back what is there.
        return bool(self._call("release lock", repr(key), lambda: self._client.kv.put(
            full, value or b"", release=session_id)))

    def read_lock(self, key: str) -> tuple[bytes | None, str | None]:
        """The lock's value and holding session (None when free or missing)."""
        full = self._full(key)
        _, item = self._call("read lock", repr(key), lambda: self._client.kv.get(full))
        return _entry(item)

    def watch(self, key: str, index: int, wait_seconds: float
              ) -> tuple[int, bytes | None, str | None]:
        """Blocking query: wait until ``key`` changes past ``index`` or ``wait_seconds`` pass.

        Args:
            key: The key (typically the lock) to watch.
            index: The index from the previous call; 0 returns at once.
            wait_seconds: The longest to wait (Consul adds up to 1/16 jitter).

        Returns:
            ``(index, value, session)``: the index to pass next time, and the
            key's value and holding session (None, None if it does not exist).
            The call may return with an unchanged entry: compare, then call again.
        """
        full = self._full(key)
        wait = f"{max(wait_seconds, 0.001):.3f}s"
        # Not bounded by max_parallel: a parked blocking query must not take a
        # slot from the requests that serve clients.
        raw_index, item = self._call("watch", repr(key), lambda: self._client.kv.get(
            full, index=str(index) if index > 0 else None, wait=wait), bounded=False)
        value, session = _entry(item)
        return int(raw_index), value, session


def _entry(item: Any) -> tuple[bytes | None, str | None]:
    """(value, session) of a KV entry as py-consul decodes it; empty values come back None."""
    if item is None:
        return None, None
    value = item.get("Value")
    return (b"" if value is None else bytes(value)), item.get("Session") or None
