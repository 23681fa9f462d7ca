"""Token store: tokens are kept only as salted HMACs, never in clear.

Lookups hash the presented token and fetch the entry stored under that hash,
so no stored secret is ever compared byte-by-byte with client input. Children
are indexed under their parent's hash so revoking a token revokes its tree.
Expiry is enforced on every lookup: an expired token (or one whose ancestor
expired) is revoked on sight. Batch tokens are not stored at all (token_batch).
The salt and the batch key derived from it are held by token_salt.py, which
wipes them when the core calls :meth:`TokenStore.forget` (on seal).
"""

from __future__ import annotations

import json
import math
import secrets
import string
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from strongroom.core.token_batch import is_batch_token
from strongroom.core.token_salt import SaltHolder
from strongroom.errors import BadRequestError
from strongroom.node.locks import node_lock
from strongroom.physical.base import Backend, Op, apply_ops

_ALPHABET = string.ascii_letters + string.digits
SERVICE_TOKEN_PREFIX = "hvs."  # noqa: S105 - a public prefix, not a secret
MAX_TOKEN_LENGTH = 512
ROOT_TOKEN_PATH = "auth/token/root"  # noqa: S105 - a path, not a secret


def generate_token_id() -> str:
    """A service token: prefix plus 24 base62 characters (~143 bits)."""
    return SERVICE_TOKEN_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def generate_accessor() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(24))


@dataclass
class TokenEntry:
    """What the store keeps about a token (its id is not among it)."""

    accessor: str
    policies: list[str]
    path: str
    creation_time: float
    display_name: str = "token"
    meta: dict[str, str] | None = None
    num_uses: int = 0
    ttl: int = 0  # the TTL last granted (at creation or renewal)
    creation_ttl: int = 0
    explicit_max_ttl: int = 0  # as requested at creation (a role's cap applies on top)
    period: int = 0  # as requested at creation (a role's period applies on renewal)
    expire_at: float = 0.0  # 0: never
    parent_hash: str = ""
    renewable: bool = False
    type: str = "service"
    role: str = ""
    entity_id: str = ""
    creation_num_uses: int = 0  # Vault's lease keeps the creation-time count
    # Earliest expiry among the expiring ancestors when last checked (0: none). Past it,
    # the ancestry is walked again: a token dies with its parent, as in Vault.
    parent_deadline: float = 0.0
    last_renewal: float = 0.0  # 0: never renewed
    hash: str = field(default="", repr=False)  # filled on load; not a secret, not stored

    @property
    def orphan(self) -> bool:
        return not self.parent_hash

    def to_json(self) -> bytes:
        doc = asdict(self)
        doc.pop("hash")
        return json.dumps(doc).encode()

    @classmethod
    def from_json(cls, raw: bytes, token_hash: str) -> TokenEntry:
        return cls(**json.loads(raw), hash=token_hash)

    def remaining_ttl(self, now: float) -> int:
        """Seconds left, against ``now`` rounded to the second as Vault's lease ttl()."""
        return max(0, int(self.expire_at - math.floor(now + 0.5))) if self.expire_at else 0


class TokenStore:
    """CRUD over token entries in a storage view (the barrier, so encrypted at rest)."""

    def __init__(
        self, storage: Backend, on_revoke: Callable[[TokenEntry], None] | None = None
    ) -> None:
        self._storage = storage
        # The batch key is derived from the (secret, barrier-encrypted) salt: no
        # second key to store or race.
        self._secrets = SaltHolder(storage)
        # Destroys what a token owns (its cubbyhole, its leases) when it goes.
        self.on_revoke = on_revoke

    def forget(self) -> None:
        """Wipe the salt and batch key from memory (seal); they reload when next needed."""
        self._secrets.forget()

    # The write notifier calls these when token entries change (in any process of the
    # node). Entries are read through storage on every lookup today, so there is
    # nothing to drop yet; a per-worker token cache (issue 14) drops ``key`` here.
    def invalidate(self, key: str) -> None:
        """``key`` (a full storage key under sys/token/) changed."""

    def invalidate_all(self) -> None:
        """Any token entry may have changed."""

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
        return token

    def lookup(self, token: str, now: float) -> TokenEntry | None:
        """The live entry for ``token``, or None (unknown, malformed or expired)."""
        if not token:
            return None
        if is_batch_token(token):
            return self._lookup_batch(token, now)
        if len(token) > MAX_TOKEN_LENGTH:
            return None
        return self._live(self.salted(token), now, persist=True)

    def lookup_hash(self, token_hash: str, now: float) -> TokenEntry | None:
        """As :meth:`lookup` by hash; safe to call under the token's node lock."""
        return self._live(token_hash, now, persist=False)

    def _read(self, token_hash: str) -> TokenEntry | None:
        raw = self._storage.get("id/" + token_hash)
        return TokenEntry.from_json(raw, token_hash) if raw is not None else None

    def _live(self, token_hash: str, now: float, persist: bool) -> TokenEntry | None:
        entry = self._read(token_hash)
        if entry is None or entry.num_uses < 0:
            return None  # unknown, or its last use is being served; revocation follows
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
        self._storage.put("id/" + entry.hash, entry.to_json())

    # -- accessors ----------------------------------------------------------------

    def _accessor_index(self, accessor: str) -> tuple[str, str] | None:
        """(token hash, accessor) the accessor's index entry names, or None."""
        if not accessor or len(accessor) > MAX_TOKEN_LENGTH:
            return None
        return self._index_at(self.salted(accessor))

    def _index_at(self, salted_accessor: str) -> tuple[str, str] | None:
        raw = self._storage.get("accessor/" + salted_accessor)
        if raw is None:
            return None
        if raw.startswith(b"{"):
            doc = json.loads(raw)
            return str(doc["token_hash"]), str(doc["accessor"])
        # Entries written before the index named its accessor hold the hash alone.
        entry = self._read(raw.decode())
        return raw.decode(), entry.accessor if entry is not None else ""

    def accessor_exists(self, accessor: str) -> bool:
        return self._accessor_index(accessor) is not None

    def lookup_accessor(self, accessor: str, now: float) -> TokenEntry | None:
        index = self._accessor_index(accessor)
        return self.lookup_hash(index[0], now) if index is not None else None

    def accessors(self) -> list[str]:
        """Every accessor in clear (in salted order, as Vault lists them)."""
        found = (self._index_at(key) for key in self._storage.list("accessor/"))
        return [index[1] for index in found if index is not None and index[1]]

    # -- revocation ---------------------------------------------------------------

    def revoke_tree(self, entry: TokenEntry) -> None:
        """Revoke ``entry`` and every descendant (depth-first, children first)."""
        stack = [entry.hash]
        order: list[str] = []
        while stack:
            current = stack.pop()
            order.append(current)
            stack.extend(self._storage.list(f"parent/{current}/"))
        for token_hash in reversed(order):
            found = self._read(token_hash)
            if found is not None:
                self._delete(found)

    def revoke_path_prefix(self, prefix: str) -> int:
        """Revoke every token (and its tree) whose creation path lies under ``prefix``.

        Vault's sys/leases/revoke-prefix for token leases: the prefix is taken as a
        directory (``auth/token/create`` covers ``auth/token/create/<role>``).
        """
        prefix = prefix if prefix.endswith("/") else prefix + "/"
        doomed = [e for e in map(self._read, self._storage.list("id/"))
                  if e is not None and (e.path + "/").startswith(prefix)]
        for entry in doomed:
            self.revoke_tree(entry)
        return len(doomed)

    def revoke_orphan(self, entry: TokenEntry) -> None:
        """Revoke only ``entry``; its children become orphans."""
        children = self._storage.list(f"parent/{entry.hash}/")
        for child_hash in (c for c in children if not c.endswith("/")):
            child = self._read(child_hash)
            if child is not None:
                child.parent_hash, child.parent_deadline = "", 0.0
                self.save(child)
            self._storage.delete(f"parent/{entry.hash}/{child_hash}")
        self._delete(entry)

    def _delete(self, entry: TokenEntry) -> None:
        if self.on_revoke is not None:
            self.on_revoke(entry)
        self._storage.delete("accessor/" + self.salted(entry.accessor))
        if entry.parent_hash:
            self._storage.delete(f"parent/{entry.parent_hash}/{entry.hash}")
        self._storage.delete("id/" + entry.hash)


def root_token_entry(now: datetime) -> TokenEntry:
    """The root token ``operator init`` makes (Vault's tokenStore.rootToken)."""
    return TokenEntry(
        accessor=generate_accessor(),
        policies=["root"],
        path=ROOT_TOKEN_PATH,
        creation_time=now.timestamp(),
        display_name="root",
    )

