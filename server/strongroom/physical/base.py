"""The storage interfaces, and the key rules every backend shares.

Protocols (compare OpenBao's ``sdk/physical``): :class:`Backend` (get, put,
delete, list), :class:`Transactional` (several writes applied atomically),
:class:`Fenced` (a backend whose writes carry the HA lock's session, set per
process), :class:`HABackend` (sessions and session-bound locks: what HA is
built on) and :class:`Lock` (the node's hold on the HA lock, as the HA manager
uses it). Implementations are checked against them by mypy
(tests/unit/physical/test_protocols.py). How the layers stack is
physical/chain.py.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from strongroom.errors import InvalidKeyError

MAX_KEY_LENGTH = 2048


@runtime_checkable
class Backend(Protocol):
    """A flat key -> bytes store with Vault's LIST semantics.

    Keys are '/'-separated paths. ``list(prefix)`` returns the immediate children
    of ``prefix`` (which is '' or ends in '/'): leaf names as-is, and
    sub-folders with a trailing '/', sorted, without duplicates.
    """

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> None: ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str) -> list[str]: ...


class Paged(Backend, Protocol):
    """A backend that lists one page of a folder for a cost in proportion to the page.

    OpenBao's ``ListPage``: the children of ``prefix`` (as ``list`` names them)
    that sort after ``after`` (which need not exist), at most ``limit`` of them
    (``limit`` <= 0: all). Reach it through :func:`list_page`.
    """

    def list_page(self, prefix: str, after: str, limit: int) -> list[str]: ...


# One storage change of a multi-key transaction: ("put", key, value) or ("delete", key, None).
Op = tuple[str, str, bytes | None]


class Transactional(Backend, Protocol):
    """A backend that applies several writes atomically: all of them or none."""

    def transaction(self, ops: Sequence[Op]) -> None: ...


class Fenced(Transactional, Protocol):
    """Writes conditioned on ``session`` holding the HA lock (None: not active, unfenced).

    Each process sets its own: the active node's processes carry the lock session,
    a standby's carry none, and a node that lost the lock has its writes refused
    (FencedError) instead of overwriting its successor's.
    """

    session: str | None


class HABackend(Protocol):
    """Sessions and session-bound locks, as Consul provides them."""

    def create_session(self, name: str, ttl_seconds: int, lock_delay_seconds: int = 0,
                       node_checks: bool = True) -> str: ...

    def renew_session(self, session_id: str) -> bool: ...

    def destroy_session(self, session_id: str) -> None: ...

    def acquire(self, key: str, session_id: str, value: bytes) -> bool: ...

    def release(self, key: str, session_id: str) -> bool: ...

    def read_lock(self, key: str) -> tuple[bytes | None, str | None]: ...

    def watch(self, key: str, index: int, wait_seconds: float
              ) -> tuple[int, bytes | None, str | None]: ...


class LockHolder(Protocol):
    @property
    def session(self) -> str | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def index(self) -> int: ...


class Lock(Protocol):
    """The HA lock as the HA manager drives it: liveness, session, lock, holder."""

    node_id: str
    session_ttl: int
    check_ttl: int

    def register(self, active: bool) -> None: ...

    def heartbeat(self) -> None: ...

    def deregister(self) -> None: ...

    def create_session(self) -> str: ...

    def session_valid(self, session: str) -> bool: ...

    def renew(self, session: str) -> bool: ...

    def destroy(self, session: str) -> None: ...

    def acquire(self, session: str) -> bool: ...

    def release(self, session: str) -> bool: ...

    def holder(self, index: int | None = None, wait: str | None = None) -> LockHolder: ...


def apply_ops(backend: Backend, ops: Sequence[Op]) -> None:
    """Apply ``ops`` atomically where the backend can (Consul, inmem), else in order.

    Callers order their operations so that stopping part-way through leaves
    storage consistent (new data before the entry that makes it visible).
    """
    transaction = getattr(backend, "transaction", None)
    if transaction is not None:  # a Transactional backend (a protocol: not isinstance-able)
        transaction(ops)
        return
    for verb, key, value in ops:
        if verb == "put":
            assert value is not None
            backend.put(key, value)
        else:
            backend.delete(key)


def list_page(backend: Backend, prefix: str, after: str = "", limit: int = 0) -> list[str]:
    """One page of ``backend.list(prefix)`` (see :class:`Paged`).

    Served by the backend's own ``list_page`` where it has one (file storage, and
    the layers above it), else cut from the whole listing (Consul, inmem).
    """
    page = getattr(backend, "list_page", None)
    if page is not None:  # a Paged backend (a protocol: not isinstance-able)
        result: list[str] = page(prefix, after, limit)
        return result
    return page_of(backend.list(prefix), after, limit)


def page_of(keys: list[str], after: str = "", limit: int = 0) -> list[str]:
    """The sorted ``keys`` past ``after``, at most ``limit`` of them (<= 0: all)."""
    if after:
        keys = keys[bisect_right(keys, after):]
    return keys[:limit] if limit > 0 else keys


def validate_key(key: str) -> None:
    """Reject keys that are empty, absolute, traversing or otherwise malformed."""
    if not key:
        raise InvalidKeyError("storage key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError("storage key is too long")
    if key.endswith("/"):
        raise InvalidKeyError("storage key must not end with '/'")
    _validate_segments(key)


def validate_prefix(prefix: str) -> None:
    """A LIST prefix is '' or a valid key followed by '/'."""
    if prefix == "":
        return
    if not prefix.endswith("/"):
        raise InvalidKeyError("list prefix must be empty or end with '/'")
    _validate_segments(prefix[:-1])


# Every storage operation validates its key (often at several layers): regexes, not loops.
_BAD_SEGMENT = re.compile(r"(?:^|/)\.{0,2}(?:/|$)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _validate_segments(path: str) -> None:
    if not path:
        raise InvalidKeyError("storage key is empty")
    if _BAD_SEGMENT.search(path):
        raise InvalidKeyError("storage key has an empty, '.' or '..' segment")
    if _CONTROL.search(path):
        raise InvalidKeyError("storage key contains a control character")
