"""The accessor index, and a per-process mirror of it for ``LIST auth/token/accessors``.

Each accessor has an index entry ``accessor/<salted accessor>`` (barrier-encrypted
JSON naming the token hash and the accessor in clear). Listing every accessor used
to read and decrypt every entry on every call: a cost that grows with every token
ever issued. The mirror keeps ``salted accessor -> accessor`` for the whole index in
this process, built once (one list, one read per entry), then kept exact by the
node's write notifier: every write under ``accessor/`` (in any process of the node)
reaches :meth:`AccessorMirror.changed` before this process serves its next request
(``Core.sync``), and the next listing re-reads only those keys. A lapped change ring,
a seal or a new active term drops it whole (``reset``).

An index entry's key is the HMAC of its accessor, so a key always names the same
accessor: a cached pair can only be wrong by existing when the key is gone, which
the re-read of changed keys catches. The accessors are not secrets a client can
authenticate with (Vault lists them to sudo holders); they are still wiped on seal.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from strongroom.physical.base import Backend

ACCESSOR_PREFIX = "accessor/"


def parse_index(raw: bytes, read_accessor: Callable[[str], str]) -> tuple[str, str]:
    """(token hash, accessor) from an index entry's value."""
    if raw.startswith(b"{"):
        doc = json.loads(raw)
        return str(doc["token_hash"]), str(doc["accessor"])
    # Entries written before the index named its accessor hold the hash alone.
    token_hash = raw.decode()
    return token_hash, read_accessor(token_hash)


class AccessorMirror:
    """Every accessor of the index, kept in step with storage through change notices."""

    def __init__(self, storage: Backend, read_accessor: Callable[[str], str]) -> None:
        self._storage = storage
        self._read_accessor = read_accessor
        self._pairs: dict[str, str] | None = None  # salted accessor -> accessor
        self._dirty: set[str] = set()
        self._epoch = 0
        # Guards _pairs/_dirty/_epoch (held briefly; change notices take it).
        self._lock = threading.Lock()
        # One listing at a time does the reads (listing is rare; two would double them).
        self._build_lock = threading.Lock()

    def changed(self, salted: str) -> None:
        """The index entry ``accessor/<salted>`` was written or deleted somewhere."""
        with self._lock:
            self._dirty.add(salted)

    def reset(self) -> None:
        """Anything may have changed (ring lapped, seal, new term): rebuild on next use."""
        with self._lock:
            self._pairs = None
            self._dirty.clear()
            self._epoch += 1

    def _read(self, salted: str) -> str | None:
        raw = self._storage.get(ACCESSOR_PREFIX + salted)
        if raw is None:
            return None
        return parse_index(raw, self._read_accessor)[1] or None

    def accessors(self) -> list[str]:
        """Every accessor in clear, in salted order (as Vault lists them)."""
        with self._build_lock:
            with self._lock:
                pairs, epoch = self._pairs, self._epoch
                dirty, self._dirty = self._dirty, set()
            if pairs is None:
                # Notices arriving from here on are kept in _dirty for the next call;
                # the listing below already sees every write completed before it.
                pairs = {}
                for salted in self._storage.list(ACCESSOR_PREFIX):
                    accessor = self._read(salted)
                    if accessor is not None:
                        pairs[salted] = accessor
            else:
                for salted in dirty:
                    accessor = self._read(salted)
                    if accessor is None:
                        pairs.pop(salted, None)
                    else:
                        pairs[salted] = accessor
            with self._lock:
                if self._epoch == epoch:
                    self._pairs = pairs
            return [pairs[k] for k in sorted(pairs)]
