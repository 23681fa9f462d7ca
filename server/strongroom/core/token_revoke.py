"""Revoking large token trees in the background, safely.

Revoking a token revokes its whole tree. A small tree is deleted inside the request,
as before; a large one (more than ``INLINE_LIMIT`` tokens) gets a persisted
tombstone ``revoking/<root hash>`` and the call returns: the node's owner deletes the
tree in the background (``TokenStore.process_revocations``, a job of
node/background.py) and removes the tombstone last. A crash or a failover leaves the
tombstone, so the next active owner carries on from what is left.

Nothing revoked can be used once the call returns: every token stores its ancestry
(the hashes of all its ancestors, ``TokenEntry.ancestors``) at creation, and every
lookup refuses a token when it or one of its ancestors is tombstoned. The set of
tombstones is cached per process and dropped by the write notifier (every write
under ``revoking/`` reaches :meth:`Tombstones.changed` before this process serves its
next request), so the check costs no storage read. Tokens created before ancestry
was stored get it computed (a walk up their parents) on first lookup.

The background deletion is post-order (children before their parent) and re-lists
a token's children after deleting it, so a child created by a request that was in
flight when its parent was revoked is found too (the creator checks, after writing,
that the parent still exists, and removes its token if not).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from strongroom.physical.base import Backend

log = logging.getLogger(__name__)

TOMBSTONE_PREFIX = "revoking/"
# Trees up to this size are deleted inside the request (~0.2 ms a token).
INLINE_LIMIT = 100


class Tombstones:
    """The hashes of token trees being revoked, cached per process."""

    def __init__(self, storage: Backend) -> None:
        self._storage = storage
        self._hashes: frozenset[str] | None = None
        self._epoch = 0
        self._lock = threading.Lock()

    def changed(self) -> None:
        """A tombstone was written or removed (in any process of the node)."""
        with self._lock:
            self._hashes = None
            self._epoch += 1

    def current(self) -> frozenset[str]:
        hashes = self._hashes
        if hashes is not None:
            return hashes
        with self._lock:
            epoch = self._epoch
        # One list, no decryption: the tombstone's key names the tree's root.
        loaded = frozenset(k for k in self._storage.list(TOMBSTONE_PREFIX)
                           if not k.endswith("/"))
        with self._lock:
            if self._epoch == epoch:
                # Not dropped while we listed: what we read is at least that recent.
                self._hashes = loaded
        return loaded

    def covers(self, token_hash: str, ancestors: list[str]) -> bool:
        """Whether the token or one of its ancestors is being revoked."""
        hashes = self.current()
        if not hashes:
            return False
        return token_hash in hashes or not hashes.isdisjoint(ancestors)

    def add(self, token_hash: str, now: float) -> None:
        """Persist a tombstone for ``token_hash``'s tree (its own process sees it at once)."""
        self._storage.put(TOMBSTONE_PREFIX + token_hash, json.dumps({"since": now}).encode())
        self.changed()

    def remove(self, token_hash: str) -> None:
        self._storage.delete(TOMBSTONE_PREFIX + token_hash)
        self.changed()

    def pending(self) -> list[str]:
        """Tombstones in storage now (not the cache: the background drains these)."""
        return [k for k in self._storage.list(TOMBSTONE_PREFIX) if not k.endswith("/")]


def subtree_size(storage: Backend, root_hash: str, limit: int) -> int:
    """How many tokens ``root_hash``'s tree holds, counting no further than ``limit + 1``.

    Reads only the parent index (lists, no decryption).
    """
    count, stack = 1, [root_hash]
    while stack and count <= limit:
        children = _children(storage, stack.pop())
        count += len(children)
        stack.extend(children)
    return count


def drain_tree(storage: Backend, root_hash: str, delete: Callable[[str, str], None],
               deadline: float) -> bool:
    """Delete ``root_hash``'s tree, children before parents; False if out of time.

    ``delete(token_hash, parent_hash)`` removes one token (its entry, accessor and
    parent index entries; on_revoke first), whether or not its entry is still there.
    Each token's children are listed again after it is deleted: one created
    meanwhile under it is not left behind.
    """
    stack: list[tuple[str, str]] = [(root_hash, "")]  # (token, its parent as reached)
    while stack:
        if time.monotonic() >= deadline:
            return False
        token_hash, parent_hash = stack.pop()
        children = _children(storage, token_hash)
        if children:
            # Children first; this token comes back once they are gone (and is listed
            # again then: one created meanwhile is handled too).
            stack.append((token_hash, parent_hash))
            stack.extend((child, token_hash) for child in children)
            continue
        delete(token_hash, parent_hash)
        # A child written just before the delete (its creator saw this token alive)
        # shows up here; one written after it sees the parent gone and removes itself.
        stack.extend((child, token_hash) for child in _children(storage, token_hash))
    return True


def drain_pending(storage: Backend, tombstones: Tombstones,
                  delete: Callable[[str, str], None], deadline: float) -> bool:
    """Delete every tombstoned tree until ``deadline``; True once none is left."""
    for root_hash in tombstones.pending():
        deleted = 0

        def counted(token_hash: str, parent_hash: str) -> None:
            nonlocal deleted
            delete(token_hash, parent_hash)
            deleted += 1

        finished = drain_tree(storage, root_hash, counted, deadline)
        log.info("event=token_tree_revocation tokens=%d finished=%s", deleted, finished)
        if not finished:
            return False
        tombstones.remove(root_hash)
    return True


def _children(storage: Backend, token_hash: str) -> list[str]:
    return [c for c in storage.list(f"parent/{token_hash}/") if not c.endswith("/")]
