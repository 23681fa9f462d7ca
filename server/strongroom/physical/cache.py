"""A read cache over node-private storage (file, inmem), kept exact across processes.

Sits on the write notifier (physical/notify.py): every write made on this node,
by any process, is a record in the node's change ring, and this cache reads the
records past its own cursor before every read, dropping exactly the keys they
name (everything, if the ring lapped it). So a read never returns a value older
than the last completed write, whoever made it:

* a write completes (``put`` returns) only after its record is in the ring, and
  every read starts by reading the ring;
* a read that raced with another process's write of the same key (the record
  shows up while the value is in flight) is served but not remembered;
* this process's own writes are remembered as written, unless another process
  wrote one of the same keys meanwhile (both land on disk in an unknown order):
  then they are forgotten. Writes of one process are serialised for that.

Entries are barrier ciphertext, as stored: caching adds no plaintext to memory.
Only for storage that this node alone writes: Consul is shared by other nodes,
whose writes the ring never sees.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from strongroom.node.shared import ChangeRing, Op
from strongroom.physical.base import Op as TxnOp
from strongroom.physical.base import list_page
from strongroom.physical.notify import WriteNotifier

# Bounds per process: small entries (tokens, policies, mount tables, most secrets) are
# what every request reads; a large value is read rarely and would crowd them out.
DEFAULT_MAX_BYTES = 32 << 20
MAX_ENTRY_BYTES = 64 << 10


class _Ticket:
    """One read (or own write) of a key in flight; spoiled if the key changes meanwhile."""

    __slots__ = ("spoiled",)

    def __init__(self) -> None:
        self.spoiled = False


class CachingBackend:
    """``inner``'s reads cached; invalidated key by key through the change ring."""

    def __init__(self, inner: WriteNotifier, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._inner = inner
        self._ring: ChangeRing = inner.ring
        self._max_bytes = max_bytes
        self._bytes = 0
        self._cache: dict[str, bytes | None] = {}
        self._read_head = self._ring.read_head
        self._position = self._ring.head
        self._in_flight: dict[str, list[_Ticket]] = {}
        # Guards the cache, the cursor and the tickets.
        self._lock = threading.Lock()
        # Serialises this process's writes with their cache updates (see the docstring).
        self._write_lock = threading.Lock()

    @property
    def inner(self) -> WriteNotifier:
        return self._inner

    def get(self, key: str) -> bytes | None:
        with self._lock:
            if self._read_head()[0] != self._position:
                self._catch_up()
            if key in self._cache:
                return self._cache[key]
            ticket = self._open(key)
        try:
            value = self._inner.get(key)
        except BaseException:
            with self._lock:
                self._close(key, ticket)
            raise
        with self._lock:
            self._catch_up()  # a write published meanwhile spoils the ticket
            self._close(key, ticket)
            if not ticket.spoiled:
                self._remember(key, value)
        return value

    def list_page(self, prefix: str, after: str = "", limit: int = 0) -> list[str]:
        return list_page(self._inner, prefix, after, limit)  # listings are never cached

    def list(self, prefix: str) -> list[str]:
        return self._inner.list(prefix)

    def put(self, key: str, value: bytes) -> None:
        self.transaction([("put", key, value)])

    def delete(self, key: str) -> None:
        self.transaction([("delete", key, None)])

    def transaction(self, ops: Sequence[TxnOp]) -> None:
        keys = [key for _, key, _ in ops]
        with self._write_lock:
            with self._lock:
                self._catch_up()
                tickets = []
                for key in keys:
                    self._forget(key)  # spoils reads in flight here: they may be older
                    tickets.append(self._open(key))
            span: tuple[int, int] | None = None
            try:
                span = self._inner.apply(ops)
            finally:
                with self._lock:
                    self._catch_up(span, tickets)
                    for key, ticket in zip(keys, tickets, strict=True):
                        self._close(key, ticket)
                    if span is not None:
                        for (verb, key, value), ticket in zip(ops, tickets, strict=True):
                            if not ticket.spoiled:
                                self._remember(key, value if verb == "put" else None)

    # -- internals (called with self._lock held) ----------------------------------

    def _catch_up(self, own: tuple[int, int] | None = None,
                  own_tickets: Sequence[_Ticket] = ()) -> None:
        """Drop what the ring's new records name (everything, if the ring lapped us).

        ``own`` is the span of the write this thread just made, ``own_tickets`` its
        tickets: its records spoil every other read of those keys, not its own.
        """
        head, records = self._ring.read(self._position)
        self._position = head
        if records is None:
            self._clear()
            return
        for position, op, key in records:
            if op is Op.RESET:
                self._clear()
            elif own is not None and own[0] <= position < own[1]:
                self._forget(key, spare=own_tickets)
            else:
                self._forget(key)

    def _open(self, key: str) -> _Ticket:
        ticket = _Ticket()
        self._in_flight.setdefault(key, []).append(ticket)
        return ticket

    def _close(self, key: str, ticket: _Ticket) -> None:
        tickets = self._in_flight[key]
        tickets.remove(ticket)
        if not tickets:
            del self._in_flight[key]

    def _forget(self, key: str, spare: Sequence[_Ticket] = ()) -> None:
        """Drop ``key``'s entry and spoil the reads of it in flight (but ``spare``)."""
        self._drop(key)
        for ticket in self._in_flight.get(key, ()):
            if ticket not in spare:
                ticket.spoiled = True

    def _drop(self, key: str) -> None:
        if key in self._cache:
            old = self._cache.pop(key)
            self._bytes -= len(key) + (len(old) if old is not None else 0)

    def _remember(self, key: str, value: bytes | None) -> None:
        """Cache ``key``'s value (None: known absent), within the byte budget."""
        self._drop(key)
        if value is not None and len(value) > MAX_ENTRY_BYTES:
            return
        size = len(key) + (len(value) if value is not None else 0)
        if self._bytes + size > self._max_bytes:
            self._cache.clear()
            self._bytes = 0
        self._cache[key] = value
        self._bytes += size

    def _clear(self) -> None:
        """Anything may have changed: forget all, and spoil every read in flight."""
        self._cache.clear()
        self._bytes = 0
        for tickets in self._in_flight.values():
            for ticket in tickets:
                ticket.spoiled = True
