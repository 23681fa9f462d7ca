"""Token store: tokens are kept only as salted HMACs, never in clear.

Lookups hash the presented token and fetch the entry stored under that hash,
so no stored secret is ever compared byte-by-byte with client input. Children
are indexed under their parent's hash so revoking a token revokes its tree; a
large tree is revoked in the background, every token of it refused from the
moment the call returns (token_revoke.py). Expiry is enforced on every lookup:
an expired token (or one whose ancestor expired) is revoked on sight. Batch
tokens are not stored at all (token_batch).
The salt and the batch key derived from it are held by token_salt.py, which
wipes them when the core calls :meth:`TokenStore.forget` (on seal).
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime

from strongroom.core.token_batch import is_batch_token
from strongroom.core.token_entry import TokenEntry as TokenEntry  # re-exported: its home
from strongroom.core.token_index import (
    ACCESSOR_PREFIX,
    SHARD_SAVE_SECONDS,
    AccessorMirror,
    parse_index,
)
from strongroom.core.token_revoke import (
    INLINE_LIMIT,
    TOMBSTONE_PREFIX,
    Tombstones,
    drain_pending,
    drain_tree,
    subtree_size,
)
from strongroom.core.token_salt import SaltHolder
from strongroom.core.token_tidy import TIDY_MARKER, request_tidy, tidy
from strongroom.errors import BadRequestError
from strongroom.node.locks import node_lock
from strongroom.physical.base import Backend, Op, apply_ops

log = logging.getLogger(__name__)

_ALPHABET = string.ascii_letters + string.digits
# Decoded entries a worker keeps (see TokenStore._cached); past it the cache starts over.
MAX_CACHED_ENTRIES = 10_000
SERVICE_TOKEN_PREFIX = "hvs."  # noqa: S105 - a public prefix, not a secret
MAX_TOKEN_LENGTH = 512
ROOT_TOKEN_PATH = "auth/token/root"  # noqa: S105 - a path, not a secret


def generate_token_id() -> str:
    """A service token: prefix plus 24 base62 characters (~143 bits)."""
    return SERVICE_TOKEN_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def generate_accessor() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(24))


class TokenStore:
    """CRUD over token entries in a storage view (the barrier, so encrypted at rest)."""

    def __init__(
        self, storage: Backend, on_revoke: Callable[[TokenEntry], None] | None = None,
        cache_entries: bool = False,
    ) -> None:
        self._storage = storage
        # Decoded entries by hash, for lookups of unlimited-use tokens: only where every
        # write to the store reaches invalidate() (node-private storage, whose writes
        # all go through this node's write notifier); see _cached.
        self._cache_entries = cache_entries
        self._entries: dict[str, TokenEntry] = {}
        self._generation = 0  # bumped by every invalidation: a read older than it is stale
        self._entries_lock = threading.Lock()
        # The batch key is derived from the (secret, barrier-encrypted) salt: no
        # second key to store or race.
        self._secrets = SaltHolder(storage)
        # Destroys what a token owns (its cubbyhole, its leases) when it goes.
        self.on_revoke = on_revoke
        # Keys reach invalidate() in full; this view's prefix turns them relative.
        self._prefix: str = getattr(storage, "prefix", "")
        self._tombstones = Tombstones(storage)
        self._mirror = AccessorMirror(storage, self._accessor_of)
        self._shards_due = 0.0  # the owner's next save of the accessor shards

    def forget(self) -> None:
        """Wipe the salt and batch key from memory (seal); they reload when next needed."""
        self._secrets.forget()
        self._mirror.reset()
        self._tombstones.changed()
        self._forget_entries()

    # The write notifier calls these when token entries change (in any process of the
    # node), before this process serves its next request: the decoded entries, the
    # accessor mirror and the tombstones are cached.
    def invalidate(self, key: str) -> None:
        """``key`` (a full storage key under sys/token/) changed."""
        rel = key[len(self._prefix):] if key.startswith(self._prefix) else key
        if rel.startswith("id/"):
            self._forget_entry(rel[3:])
        elif rel.startswith(ACCESSOR_PREFIX):
            self._mirror.changed(rel[len(ACCESSOR_PREFIX):])
        elif rel.startswith(TOMBSTONE_PREFIX):
            self._tombstones.changed()

    def invalidate_all(self) -> None:
        """Any token entry may have changed."""
        self._mirror.reset()
        self._tombstones.changed()
        self._forget_entries()

    def _forget_entry(self, token_hash: str) -> None:
        with self._entries_lock:
            self._generation += 1
            self._entries.pop(token_hash, None)

    def _forget_entries(self) -> None:
        with self._entries_lock:
            self._generation += 1
            self._entries.clear()

    def salted(self, value: str) -> str:
        """HMAC-SHA256 of ``value`` under this store's salt (hex)."""
        return self._secrets.get().salted(value)

    # -- create / read ----------------------------------------------------------

    def create(self, entry: TokenEntry, token_id: str | None = None) -> str:
        """Store ``entry`` and return the token id the client will hold."""
        if entry.type == "batch":
            token = self._secrets.get().seal_batch(asdict(entry))
            entry.hash = self.salted(token)
            return token
        if token_id and entry.path == ROOT_TOKEN_PATH and "." not in token_id:
            # Vault's dev server makes a -dev-root-token-id token through
            # auth/token/create (user-chosen ids never contain '.'; ours are 'hvs.').
            entry.path, entry.display_name = "auth/token/create", "token"
        token = token_id or generate_token_id()
        token_hash = self.salted(token)
        if token_id and self._storage.get("id/" + token_hash) is not None:
            raise BadRequestError("cannot create a token with a duplicate ID")
        entry.hash = token_hash
        entry.creation_num_uses = entry.num_uses
        entry.ancestors = self._ancestry_of_child(entry.parent_hash)
        index = {"token_hash": token_hash, "accessor": entry.accessor}
        # One transaction where storage has them; else in this order, so that a crash
        # leaves at worst an index entry pointing at nothing, never a token without one.
        ops: list[Op] = []
        if entry.parent_hash:
            ops.append(("put", f"parent/{entry.parent_hash}/{token_hash}", b""))
        ops.append(("put", "accessor/" + self.salted(entry.accessor),
                    json.dumps(index).encode()))
        ops.append(("put", "id/" + token_hash, entry.to_json()))
        apply_ops(self._storage, ops)
        if entry.parent_hash and self._storage.get("id/" + entry.parent_hash) is None:
            # The parent was revoked while this request was in flight, and its tree's
            # deletion may have listed its children before ours was written: undo.
            self._delete_hash(token_hash, entry.parent_hash)
            raise BadRequestError(_NO_PARENT)
        return token

    def _ancestry_of_child(self, parent_hash: str) -> list[str]:
        if not parent_hash:
            return []
        parent = self._read(parent_hash)
        if parent is None or self._tombstones.covers(parent_hash, parent.ancestors or []):
            raise BadRequestError(_NO_PARENT)
        if parent.ancestors is None and not self._fill_ancestors(parent, persist=True):
            raise BadRequestError(_NO_PARENT)
        assert parent.ancestors is not None
        return [parent_hash, *parent.ancestors]

    def lookup(self, token: str, now: float) -> TokenEntry | None:
        """The live entry for ``token``, or None (unknown, malformed or expired)."""
        if not token:
            return None
        if is_batch_token(token):
            return self._lookup_batch(token, now)
        if len(token) > MAX_TOKEN_LENGTH:
            return None
        return self._live(self.salted(token), now, persist=True, cached=True)

    def lookup_hash(self, token_hash: str, now: float) -> TokenEntry | None:
        """As :meth:`lookup` by hash; safe to call under the token's node lock."""
        return self._live(token_hash, now, persist=False)

    def _read(self, token_hash: str) -> TokenEntry | None:
        raw = self._storage.get("id/" + token_hash)
        return TokenEntry.from_json(raw, token_hash) if raw is not None else None

    def _cached(self, token_hash: str) -> TokenEntry | None:
        """As :meth:`_read`, from this worker's decoded entries when it can (the hot
        path: every request's token, without a decryption and a JSON decode).

        Exact, as the storage read cache is: an entry changed by any process of the node
        is dropped by :meth:`invalidate` before this process serves its next request
        (Core.sync), and a read that raced with an invalidation is served but not kept
        (the generation moved). Only unlimited-use tokens are kept: a use count is
        re-read under the token's lock anyway. Callers get a copy they may change.
        """
        if not self._cache_entries:
            return self._read(token_hash)
        kept = self._entries.get(token_hash)
        if kept is not None:
            return kept.copy()
        generation = self._generation
        entry = self._read(token_hash)
        if entry is None or entry.num_uses != 0 or entry.ancestors is None:
            return entry
        with self._entries_lock:
            if generation == self._generation:
                if len(self._entries) >= MAX_CACHED_ENTRIES:
                    self._entries.clear()
                self._entries[token_hash] = entry.copy()
        return entry

    def _live(self, token_hash: str, now: float, persist: bool,
              cached: bool = False) -> TokenEntry | None:
        entry = self._cached(token_hash) if cached else self._read(token_hash)
        if entry is None or entry.num_uses < 0:
            return None  # unknown, or its last use is being served; revocation follows
        if entry.ancestors is None and not self._fill_ancestors(entry, persist):
            return None  # an ancestor is gone: so is this token (tidy removes it)
        assert entry.ancestors is not None
        if self._tombstones.covers(token_hash, entry.ancestors):
            return None  # its tree is being revoked (in the background)
        if entry.expire_at and entry.expire_at <= now:
            self.revoke_tree(entry)
            return None
        if entry.parent_deadline and entry.parent_deadline <= now:
            deadline = self._ancestry_deadline(entry, now)
            if deadline is None:
                self.revoke_tree(entry)
                return None
            entry.parent_deadline = deadline
            if persist:
                self._refresh_deadline(entry, now)
        return entry

    def _ancestry_deadline(self, entry: TokenEntry, now: float) -> float | None:
        """The earliest expiry among ``entry``'s ancestors (0: none expire); None if one died."""
        deadline = 0.0
        parent_hash, seen = entry.parent_hash, {entry.hash}
        while parent_hash and parent_hash not in seen:
            seen.add(parent_hash)
            parent = self._read(parent_hash)
            if parent is None:
                return None
            if parent.expire_at and parent.expire_at <= now:
                self.revoke_tree(parent)
                return None
            if parent.expire_at:
                deadline = min(deadline or parent.expire_at, parent.expire_at)
            parent_hash = parent.parent_hash
        return deadline

    def _fill_ancestors(self, entry: TokenEntry, persist: bool) -> bool:
        """Compute the ancestry of a token made before it was stored; False if broken."""
        ancestors: list[str] = []
        parent_hash = entry.parent_hash
        while parent_hash and parent_hash not in ancestors and parent_hash != entry.hash:
            parent = self._read(parent_hash)
            if parent is None:
                return False
            ancestors.append(parent_hash)
            if parent.ancestors is not None:
                ancestors += parent.ancestors
                break
            parent_hash = parent.parent_hash
        entry.ancestors = ancestors
        if persist and entry.parent_hash:
            with node_lock("token|" + entry.hash):
                current = self._read(entry.hash)
                if current is not None and current.ancestors is None:
                    current.ancestors = ancestors
                    self.save(current)
        return True

    def _refresh_deadline(self, entry: TokenEntry, now: float) -> None:
        """Persist a re-checked ancestry deadline without losing a concurrent use count."""
        with node_lock("token|" + entry.hash):
            current = self._read(entry.hash)
            if current is not None and current.parent_deadline <= now:
                current.parent_deadline = entry.parent_deadline
                self.save(current)

    def _lookup_batch(self, token: str, now: float) -> TokenEntry | None:
        doc = self._secrets.get().open_batch(token)
        if doc is None or doc["creation_time"] + doc["ttl"] <= now:
            return None
        if doc["parent_hash"] and self.lookup_hash(doc["parent_hash"], now) is None:
            return None
        return TokenEntry(accessor="", type="batch", creation_ttl=doc["ttl"],
                          expire_at=doc["creation_time"] + doc["ttl"], hash=self.salted(token),
                          **doc)

    def save(self, entry: TokenEntry) -> None:
        self._forget_entry(entry.hash)
        self._storage.put("id/" + entry.hash, entry.to_json())
        # Others learn it from the notifier; this process forgets at once (its next
        # sync would too, but a request may look the token up again before then).
        self._forget_entry(entry.hash)

    # -- accessors ----------------------------------------------------------------

    def _accessor_index(self, accessor: str) -> tuple[str, str] | None:
        """(token hash, accessor) the accessor's index entry names, or None."""
        if not accessor or len(accessor) > MAX_TOKEN_LENGTH:
            return None
        return self._index_at(self.salted(accessor))

    def _index_at(self, salted_accessor: str) -> tuple[str, str] | None:
        raw = self._storage.get(ACCESSOR_PREFIX + salted_accessor)
        return parse_index(raw, self._accessor_of) if raw is not None else None

    def _accessor_of(self, token_hash: str) -> str:
        entry = self._read(token_hash)
        return entry.accessor if entry is not None else ""

    def accessor_exists(self, accessor: str) -> bool:
        return self._accessor_index(accessor) is not None

    def lookup_accessor(self, accessor: str, now: float) -> TokenEntry | None:
        index = self._accessor_index(accessor)
        return self.lookup_hash(index[0], now) if index is not None else None

    def accessors(self) -> list[str]:
        """Every accessor in clear (in salted order, as Vault lists them).

        From this process's mirror of the index: only what changed since the last
        listing is read (token_index.py).
        """
        return self._mirror.accessors()

    # -- revocation ---------------------------------------------------------------

    def revoke_tree(self, entry: TokenEntry) -> None:
        """Revoke ``entry`` and every descendant (children first).

        A small tree is deleted now; a larger one is tombstoned (every token of it is
        refused from now on, in every process) and deleted in the background by
        :meth:`process_revocations`.
        """
        if subtree_size(self._storage, entry.hash, INLINE_LIMIT) <= INLINE_LIMIT:
            drain_tree(self._storage, entry.hash, self._delete_hash, math.inf)
            return
        self._tombstones.add(entry.hash, time.time())
        log.info("event=token_tree_revocation_queued")

    def request_tidy(self, now: float) -> bool:
        """Ask the owner for a tidy (token_tidy.py); False if one is already asked for."""
        return request_tidy(self._storage, now)

    def background(self, now: float, budget_seconds: float = 2.0) -> bool:
        """The owner's job: a requested tidy, trees being revoked (True once none is
        left), and now and then the accessor shards (token_index.py)."""
        if self._storage.get(TIDY_MARKER) is not None:
            # Taken off first: a tidy that fails is logged and not retried every second
            # (Vault's runs once too); every step of it is idempotent, so run it again.
            self._storage.delete(TIDY_MARKER)
            tidy(self._storage, self._read, self.revoke_tree, now)
        done = self.process_revocations(budget_seconds)
        if time.monotonic() >= self._shards_due:
            self._shards_due = time.monotonic() + SHARD_SAVE_SECONDS
            self._mirror.save_shards()
        return done

    def process_revocations(self, budget_seconds: float = 2.0) -> bool:
        """Delete tombstoned trees for up to ``budget_seconds``; True once none is left.

        The owner's background job (node/background.py) calls this on the active node.
        """
        return drain_pending(self._storage, self._tombstones, self._delete_hash,
                             time.monotonic() + budget_seconds)

    def revoke_orphan(self, entry: TokenEntry) -> None:
        """Revoke only ``entry``; its children become orphans."""
        children = self._storage.list(f"parent/{entry.hash}/")
        for child_hash in (c for c in children if not c.endswith("/")):
            child = self._read(child_hash)
            if child is not None:
                child.parent_hash, child.parent_deadline, child.ancestors = "", 0.0, []
                self.save(child)
            self._storage.delete(f"parent/{entry.hash}/{child_hash}")
        self._delete(entry)

    def _delete(self, entry: TokenEntry, parent_hash: str = "") -> None:
        if self.on_revoke is not None:
            self.on_revoke(entry)
        # The entry first: a crash part-way leaves index entries naming nothing (tidy
        # removes them), never a live token that its tree's deletion cannot reach.
        ops: list[Op] = [("delete", "id/" + entry.hash, None),
                         ("delete", ACCESSOR_PREFIX + self.salted(entry.accessor), None)]
        for parent in dict.fromkeys(p for p in (entry.parent_hash, parent_hash) if p):
            ops.append(("delete", f"parent/{parent}/{entry.hash}", None))
        apply_ops(self._storage, ops)
        self._forget_entry(entry.hash)

    def _delete_hash(self, token_hash: str, parent_hash: str) -> None:
        """Delete one token by hash, and its index entry under ``parent_hash``, even if
        its entry is gone already (a deletion interrupted part-way)."""
        entry = self._read(token_hash)
        if entry is not None:
            self._delete(entry, parent_hash)
        elif parent_hash:
            self._storage.delete(f"parent/{parent_hash}/{token_hash}")


_NO_PARENT = "parent token lookup failed: no parent found"


def root_token_entry(now: datetime) -> TokenEntry:
    """The root token ``operator init`` makes (Vault's tokenStore.rootToken)."""
    return TokenEntry(
        accessor=generate_accessor(),
        policies=["root"],
        path=ROOT_TOKEN_PATH,
        creation_time=now.timestamp(),
        display_name="root",
    )

