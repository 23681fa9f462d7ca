"""Writes that only land while this node holds the HA lock.

Every put and delete from the active node is a Consul transaction that first
checks the lock is still held by this node's session. A node that was paused
past its session's life and resumes still believing it is active finds its
writes refused, and steps down instead of corrupting what the new active wrote.

:class:`FencedBackend` is the :class:`~strongroom.physical.base.Fenced` layer of
the storage chain (physical/chain.py): each process sets its own ``session``
(the core from the seal snapshot, the HA manager in the process holding the lock).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from strongroom.errors import FencedError

__all__ = ["FencedBackend", "FencedError", "FencingStore"]


class FencingStore(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def list(self, prefix: str) -> list[str]: ...

    def put(self, key: str, value: bytes) -> None: ...

    def delete(self, key: str) -> None: ...

    def put_fenced(self, key: str, value: bytes, lock_key: str, session_id: str) -> None: ...

    def delete_fenced(self, key: str, lock_key: str, session_id: str) -> None: ...

    def transaction(self, ops: Sequence[tuple[str, str, bytes | None]],
                    lock_key: str | None = None, session_id: str | None = None) -> None: ...




class FencedBackend:
    """Backend whose writes are conditioned on ``session`` holding ``lock_key``."""

    def __init__(self, store: FencingStore, lock_key: str,
                 session: Callable[[], str | None] | None = None) -> None:
        self._store = store
        self._lock_key = lock_key
        self._session_of = session
        self.session: str | None = None

    def _current(self) -> str | None:
        return self._session_of() if self._session_of is not None else self.session

    def get(self, key: str) -> bytes | None:
        return self._store.get(key)

    def list(self, prefix: str) -> list[str]:
        return self._store.list(prefix)

    def put(self, key: str, value: bytes) -> None:
        session = self._current()
        if session is None:
            # Not active: only bootstrap writes (init, before any leader exists) get here.
            self._store.put(key, value)
        else:
            self._store.put_fenced(key, value, self._lock_key, session)

    def transaction(self, ops: Sequence[tuple[str, str, bytes | None]]) -> None:
        """One Consul transaction, led by the lock check when this node is active."""
        session = self._current()
        if session is None:
            self._store.transaction(ops)
        else:
            self._store.transaction(ops, self._lock_key, session)

    def delete(self, key: str) -> None:
        session = self._current()
        if session is None:
            self._store.delete(key)
        else:
            self._store.delete_fenced(key, self._lock_key, session)
