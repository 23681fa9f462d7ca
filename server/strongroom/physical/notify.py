"""The write notifier: a storage layer that tells the node which keys changed.

Place in the chain (physical/chain.py)::

    physical -> fencing -> WriteNotifier -> read cache -> barrier

Every write that passes through (``put``, ``delete``, ``transaction``) is
applied below, then published:

* **Across processes**: one ``(op, key)`` record per key into the node's
  :class:`~strongroom.node.shared.ChangeRing` (shared memory). Each process
  reads the records past its own cursor before it serves a request
  (:class:`ChangeFeed`) and before each cached read (physical/cache.py), and
  invalidates exactly what they name: a cached storage entry, the policy
  cache, a mount table, a mounted backend's ``invalidate(key)``. A reader
  the ring has lapped invalidates everything. A write that fails is published
  all the same (what landed is unknown), so nobody keeps a value it may have
  replaced.
* **In this process, to observers** (:meth:`WriteNotifier.observe`): each
  observer is called with ``(key, op)`` for every key of a write that
  succeeded, in order, after it succeeded. This is where a replication WAL
  attaches: the notifier sits below the barrier, so keys are plain but values
  are ciphertext, which is what a WAL ships (primary and secondary share the
  keyring). An observer that must be atomic with the write (Vault's WAL is
  written in the same transaction) would add its entry to the transaction's
  ops instead; the ops pass through :meth:`WriteNotifier.apply` in one place
  for that reason.

The records only cover this node's writes: storage shared with other nodes
(Consul) is not cached, and a standby reloads everything when it becomes active.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from strongroom.node.shared import ChangeRing, Op
from strongroom.physical.base import Backend, list_page
from strongroom.physical.base import Op as TxnOp

log = logging.getLogger(__name__)

WriteObserver = Callable[[str, Op], None]
"""Called with ``(key, Op.PUT | Op.DELETE)`` after a write of ``key`` succeeded."""


def _changes(ops: Sequence[TxnOp]) -> list[tuple[Op, str]]:
    return [(Op.PUT if verb == "put" else Op.DELETE, key) for verb, key, _ in ops]


class WriteNotifier:
    """A :class:`~strongroom.physical.base.Backend` that publishes every write of ``inner``."""

    def __init__(self, inner: Backend, ring: ChangeRing) -> None:
        self._inner = inner
        self._transaction: Callable[[Sequence[TxnOp]], None] | None = getattr(
            inner, "transaction", None)
        self.ring = ring
        self._observers: list[WriteObserver] = []

    @property
    def inner(self) -> Backend:
        return self._inner

    def observe(self, observer: WriteObserver) -> None:
        """Call ``observer(key, op)`` after every successful write made through this layer."""
        self._observers.append(observer)

    def get(self, key: str) -> bytes | None:
        return self._inner.get(key)

    def list_page(self, prefix: str, after: str = "", limit: int = 0) -> list[str]:
        return list_page(self._inner, prefix, after, limit)

    def list(self, prefix: str) -> list[str]:
        return self._inner.list(prefix)

    def put(self, key: str, value: bytes) -> None:
        self.apply([("put", key, value)])

    def delete(self, key: str) -> None:
        self.apply([("delete", key, None)])

    def transaction(self, ops: Sequence[TxnOp]) -> None:
        self.apply(ops)

    def apply(self, ops: Sequence[TxnOp]) -> tuple[int, int]:
        """Write ``ops`` (atomically where the backend can), then publish them.

        Returns:
            The ring span ``[start, end)`` of this write's records, so that the
            cache above can tell its own records from other processes' writes.
        """
        if not ops:
            return self.ring.head, self.ring.head
        changes = _changes(ops)
        try:
            if len(ops) == 1:
                verb, key, value = ops[0]
                if verb == "put":
                    assert value is not None
                    self._inner.put(key, value)
                else:
                    self._inner.delete(key)
            elif self._transaction is not None:
                self._transaction(ops)
            else:
                for verb, key, value in ops:
                    if verb == "put":
                        assert value is not None
                        self._inner.put(key, value)
                    else:
                        self._inner.delete(key)
        finally:
            # Published on failure too: part of it may have landed.
            span = self.ring.append(changes)
        for op, key in changes:
            for observer in self._observers:
                observer(key, op)
        return span

    def reset(self) -> None:
        """Tell every process to invalidate everything (e.g. a worker died mid-write)."""
        self.ring.append([(Op.RESET, "")])


@dataclass(frozen=True)
class Subscription:
    prefix: str
    on_change: Callable[[str], None]  # the full storage key that changed
    on_reset: Callable[[], None]  # anything may have changed


class ChangeFeed:
    """One reader's cursor on the ring, dispatching records to subscribers by key prefix.

    Not thread-safe: the core calls :meth:`dispatch` under its sync lock.
    """

    def __init__(self, ring: ChangeRing) -> None:
        self._ring = ring
        self._read_head = ring.read_head
        self._position = ring.head
        self._subscriptions: list[Subscription] = []

    def subscribe(self, prefix: str, on_change: Callable[[str], None],
                  on_reset: Callable[[], None]) -> None:
        """Route changes of keys starting with ``prefix`` to ``on_change``."""
        self._subscriptions.append(Subscription(prefix, on_change, on_reset))

    @property
    def pending(self) -> bool:
        """Whether some process wrote since the last dispatch (one memory read)."""
        return self._read_head()[0] != self._position

    def skip(self) -> None:
        """Move past everything written so far (the caller reloads all it holds)."""
        self._position = self._ring.head

    def dispatch(self) -> None:
        """Deliver every record written since the last call; a lapped cursor resets all."""
        head, records = self._ring.read(self._position)
        self._position = head
        if records is None:
            log.info("event=change_ring_lapped action=invalidate_all")
            self._reset_all()
            return
        for _, op, key in records:
            if op is Op.RESET:
                self._reset_all()
                continue
            for sub in self._subscriptions:
                if key.startswith(sub.prefix):
                    sub.on_change(key)

    def _reset_all(self) -> None:
        # Each distinct callback once, though it may serve several prefixes.
        for on_reset in dict.fromkeys(sub.on_reset for sub in self._subscriptions):
            on_reset()
