"""Token store: tokens are kept only as salted HMACs, never in clear.

Lookups hash the presented token and fetch the entry stored under that hash,
so no stored secret is ever compared byte-by-byte with client input. Children
are indexed under their parent's hash so revoking a token revokes its tree.
Expiry is enforced on every lookup: an expired token is revoked on sight.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from strongroom.physical.base import Backend

_SALT_KEY = "salt"
_ALPHABET = string.ascii_letters + string.digits
SERVICE_TOKEN_PREFIX = "hvs."  # noqa: S105 - a public prefix, not a secret
MAX_TOKEN_LENGTH = 512


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
    ttl: int = 0
    creation_ttl: int = 0
    explicit_max_ttl: int = 0
    period: int = 0
    expire_at: float = 0.0  # 0: never
    parent_hash: str = ""
    renewable: bool = False
    type: str = "service"
    role: str = ""
    entity_id: str = ""
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
        return max(0, int(self.expire_at - now)) if self.expire_at else 0


class TokenStore:
    """CRUD over token entries in a storage view (the barrier, so encrypted at rest)."""

    def __init__(
        self, storage: Backend, on_revoke: Callable[[TokenEntry], None] | None = None
    ) -> None:
        self._storage = storage
        self._salt: bytes | None = None
        self._lock = threading.Lock()
        # Destroys what a token owns (its cubbyhole, its leases) when it goes.
        self.on_revoke = on_revoke

    def salted(self, value: str) -> str:
        """HMAC-SHA256 of ``value`` under this store's salt (hex)."""
        if self._salt is None:
            with self._lock:
                salt = self._storage.get(_SALT_KEY)
                if salt is None:
                    salt = os.urandom(32)
                    self._storage.put(_SALT_KEY, salt)
                self._salt = salt
        return hmac.new(self._salt, value.encode(), hashlib.sha256).hexdigest()

    # -- create / read ----------------------------------------------------------

    def create(self, entry: TokenEntry, token_id: str | None = None) -> str:
        """Store ``entry`` and return the token id the client will hold."""
        token = token_id or generate_token_id()
        token_hash = self.salted(token)
        entry.hash = token_hash
        self._storage.put("id/" + token_hash, entry.to_json())
        self._storage.put("accessor/" + self.salted(entry.accessor), token_hash.encode())
        if entry.parent_hash:
            self._storage.put(f"parent/{entry.parent_hash}/{token_hash}", b"")
        return token

    def lookup(self, token: str, now: float) -> TokenEntry | None:
        """The live entry for ``token``, or None (unknown, malformed or expired)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        return self.lookup_hash(self.salted(token), now)

    def lookup_hash(self, token_hash: str, now: float) -> TokenEntry | None:
        raw = self._storage.get("id/" + token_hash)
        if raw is None:
            return None
        entry = TokenEntry.from_json(raw, token_hash)
        if entry.num_uses < 0:
            return None  # its last use is being served; revocation follows
        if entry.expire_at and entry.expire_at <= now:
            self.revoke_tree(entry)
            return None
        return entry

    def lookup_accessor(self, accessor: str, now: float) -> TokenEntry | None:
        if not accessor or len(accessor) > MAX_TOKEN_LENGTH:
            return None
        raw = self._storage.get("accessor/" + self.salted(accessor))
        return self.lookup_hash(raw.decode(), now) if raw is not None else None

    def save(self, entry: TokenEntry) -> None:
        self._storage.put("id/" + entry.hash, entry.to_json())

    def accessors(self) -> list[str]:
        """Salted accessor hashes are all storage holds; Vault lists accessors in clear."""
        return self._storage.list("accessor/")

    # -- revocation ---------------------------------------------------------------

    def children(self, entry: TokenEntry) -> list[str]:
        return [c for c in self._storage.list(f"parent/{entry.hash}/") if not c.endswith("/")]

    def revoke_tree(self, entry: TokenEntry) -> None:
        """Revoke ``entry`` and every descendant (depth-first, children first)."""
        stack = [entry.hash]
        order: list[str] = []
        while stack:
            current = stack.pop()
            order.append(current)
            stack.extend(self._storage.list(f"parent/{current}/"))
        for token_hash in reversed(order):
            raw = self._storage.get("id/" + token_hash)
            if raw is not None:
                self._delete(TokenEntry.from_json(raw, token_hash))

    def revoke_orphan(self, entry: TokenEntry) -> None:
        """Revoke only ``entry``; its children become orphans."""
        for child_hash in self.children(entry):
            raw = self._storage.get("id/" + child_hash)
            if raw is not None:
                child = TokenEntry.from_json(raw, child_hash)
                child.parent_hash = ""
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
    return TokenEntry(
        accessor=generate_accessor(),
        policies=["root"],
        path="auth/token/root",
        creation_time=now.timestamp(),
        display_name="root",
    )


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat()


def token_lookup_data(entry: TokenEntry, token_id: str, now: float) -> dict[str, Any]:
    """The data block of auth/token/lookup* for ``entry`` (id "" for accessor lookups)."""
    return {
        "accessor": entry.accessor,
        "creation_time": int(entry.creation_time),
        "creation_ttl": entry.creation_ttl,
        "display_name": entry.display_name,
        "entity_id": entry.entity_id,
        "expire_time": _rfc3339(entry.expire_at) if entry.expire_at else None,
        "explicit_max_ttl": entry.explicit_max_ttl,
        "id": token_id,
        "issue_time": _rfc3339(entry.creation_time),
        "meta": entry.meta,
        "num_uses": entry.num_uses,
        "orphan": entry.orphan,
        "path": entry.path,
        "policies": entry.policies,
        "renewable": entry.renewable,
        "ttl": entry.remaining_ttl(now),
        "type": entry.type,
        **({"period": entry.period} if entry.period else {}),
        **({"role": entry.role} if entry.role else {}),
    }
