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

Building the mirror (a new worker's first listing) would still read every entry,
one storage read each. So the pairs are also kept in storage, in 256 shards
(``accessor-cache/<first two hex digits>``, barrier-encrypted like the index):
a build reads the shards, lists the index and reads only the entries the shards
lack, and writes the shards back when many were missing; the node's owner keeps
them current (``save_shards``, every ``SHARD_SAVE_SECONDS`` from its token job).
For the same reason as above the shards can be stale but never wrong: the listing
decides what exists.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

from strongroom.errors import StrongroomError
from strongroom.physical.base import Backend

log = logging.getLogger(__name__)

ACCESSOR_PREFIX = "accessor/"
CACHE_PREFIX = "accessor-cache/"
# A build that had to read this many entries the shards lacked writes them back.
REFRESH_MISSES = 64
SHARD_SAVE_SECONDS = 30.0
# Change notices kept between listings, at most: past it, the mirror is dropped (the
# next listing reads everything, which is what re-reading that many keys would cost).
MAX_PENDING = 4096


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
        self._building = False
        self._epoch = 0
        # Shards this mirror holds newer pairs for than storage, and how many keys.
        self._unsaved: set[str] = set()
        self._unsaved_keys = 0
        # Guards _pairs/_dirty/_epoch (held briefly; change notices take it).
        self._lock = threading.Lock()
        # One listing at a time does the reads (listing is rare; two would double them).
        self._build_lock = threading.Lock()

    def changed(self, salted: str) -> None:
        """The index entry ``accessor/<salted>`` was written or deleted somewhere."""
        with self._lock:
            if self._pairs is None and not self._building:
                return  # no mirror: the next listing reads the index whole anyway
            self._dirty.add(salted)
            if len(self._dirty) > max(MAX_PENDING, len(self._pairs or ())):
                self._pairs = None  # bounded memory for a process that rarely lists
                self._dirty.clear()
                self._epoch += 1

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

    def _build(self) -> dict[str, str]:
        shards = self._load_shards()
        known = {k: v for shard in shards.values() for k, v in shard.items()}
        pairs: dict[str, str] = {}
        missed_shards: set[str] = set()
        misses = 0
        for salted in self._storage.list(ACCESSOR_PREFIX):
            accessor = known.get(salted)
            if accessor is None:
                misses += 1
                missed_shards.add(salted[:2])
                accessor = self._read(salted)
                if accessor is None:
                    continue  # deleted since the listing
            pairs[salted] = accessor
        self._unsaved, self._unsaved_keys = missed_shards, misses
        if misses >= REFRESH_MISSES or len(known) > 2 * len(pairs) + REFRESH_MISSES:
            self._save_shards(pairs, shards)
        return pairs

    def _load_shards(self) -> dict[str, dict[str, str]]:
        shards: dict[str, dict[str, str]] = {}
        for name in self._storage.list(CACHE_PREFIX):
            raw = self._storage.get(CACHE_PREFIX + name)
            if raw is not None and not name.endswith("/"):
                shards[name] = json.loads(raw)
        return shards

    def _save_shards(self, pairs: dict[str, str], old: dict[str, dict[str, str]]) -> None:
        new: dict[str, dict[str, str]] = {}
        for salted, accessor in pairs.items():
            new.setdefault(salted[:2], {})[salted] = accessor
        try:
            for name, shard in new.items():
                if old.get(name) != shard:
                    self._storage.put(CACHE_PREFIX + name, json.dumps(shard).encode())
            for name in old.keys() - new.keys():
                self._storage.delete(CACHE_PREFIX + name)
            self._unsaved, self._unsaved_keys = set(), 0
        except StrongroomError as exc:
            # Only a cache: the listing stands; the next build reads more entries.
            log.warning("event=accessor_cache_write_failed error=%s", type(exc).__name__)

    def accessors(self) -> list[str]:
        """Every accessor in clear, in salted order (as Vault lists them)."""
        with self._build_lock:
            with self._lock:
                pairs, epoch = self._pairs, self._epoch
                dirty, self._dirty = self._dirty, set()
                self._building = pairs is None
            if pairs is None:
                # Notices arriving from here on are kept in _dirty for the next call;
                # the listing below already sees every write completed before it.
                pairs = self._build()
            else:
                self._unsaved.update(salted[:2] for salted in dirty)
                self._unsaved_keys += len(dirty)
                for salted in dirty:
                    accessor = self._read(salted)
                    if accessor is None:
                        pairs.pop(salted, None)
                    else:
                        pairs[salted] = accessor
            with self._lock:
                self._building = False
                if self._epoch == epoch:
                    self._pairs = pairs
                else:
                    self._dirty.clear()  # dropped meanwhile: notices are moot
            return [pairs[k] for k in sorted(pairs)]

    def save_shards(self) -> None:
        """Bring the stored shards up to date with the index (the owner, now and then),
        so that a worker's first listing finds nearly everything in them."""
        self.accessors()  # built, or updated with what changed
        with self._build_lock:
            pairs = self._pairs
            if pairs is None or self._unsaved_keys < REFRESH_MISSES:
                return
            names, self._unsaved, self._unsaved_keys = self._unsaved, set(), 0
            shards: dict[str, dict[str, str]] = {name: {} for name in names}
            for salted, accessor in pairs.items():
                shard = shards.get(salted[:2])
                if shard is not None:
                    shard[salted] = accessor
            try:
                for name, shard in shards.items():
                    if shard:
                        self._storage.put(CACHE_PREFIX + name, json.dumps(shard).encode())
                    else:
                        self._storage.delete(CACHE_PREFIX + name)
            except StrongroomError as exc:
                log.warning("event=accessor_cache_write_failed error=%s", type(exc).__name__)
