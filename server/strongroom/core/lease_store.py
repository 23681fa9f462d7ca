"""Lease entries as stored: one per lease, keyed by lease id, plus an index by token.

Layout, under the barrier (so encrypted at rest, the storage path as AAD)::

    sys/expire/id/<lease id>                  the entry (JSON)
    sys/expire/token/<token hash>/<digest>    the lease id of a secret that token obtained

A lease id is ``<request path>/<random>`` (a secret) or ``<token path>/<token hash>``
(a token, as Vault's ``path.Join(te.Path, saltedID)``), so the entries of one mount,
one role or one token-creation path sit in one folder: ``revoke-prefix`` and
``LIST sys/leases/lookup/<prefix>`` read only what lies under the prefix, whatever
else is stored. The token index lets revoking a token find its leases without a scan.

Entries never hold a token in clear (only its salted hash, as the token store keys it)
nor the secret's response data: a backend's ``revoke``/``renew`` get the secret's
``internal`` back, which the backend chose to keep (e.g. a database username).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from strongroom.barrier.view import StorageView
from strongroom.errors import InvalidKeyError
from strongroom.physical.base import Backend, Op, apply_ops, validate_key

EXPIRE_PREFIX = "sys/expire/"
ID_PREFIX = EXPIRE_PREFIX + "id/"
# Set once the active node has given every pre-existing token its lease (restore).
TOKENS_MIGRATED_KEY = "tokens-migrated"
SECRET_KIND = "secret"  # noqa: S105 - a lease kind, not a secret
AUTH_KIND = "auth"


@dataclass
class LeaseEntry:
    """One lease. Times are epoch seconds (floats); 0 means "none"."""

    lease_id: str
    path: str  # the request path (a secret) or the token's creation path (a token)
    kind: str = SECRET_KIND
    secret_type: str = ""
    internal: dict[str, Any] = field(default_factory=dict)
    renewable: bool = True
    ttl: int = 0  # the TTL last granted
    max_ttl: int = 0  # the role's bound (Secret.max_ttl), measured from issue_time
    mount_accessor: str = ""
    mount_path: str = ""
    token_hash: str = ""  # the client token that obtained it (a secret) / the token (auth)
    issue_time: float = 0.0
    expire_time: float = 0.0  # 0: never expires
    last_renewal: float = 0.0
    # Revocation failures: retried with backoff (next_attempt), then irrevocable.
    revoke_attempts: int = 0
    next_attempt: float = 0.0
    revoke_error: str = ""
    irrevocable: bool = False

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> LeaseEntry:
        known = {f.name for f in fields(cls)}
        doc = json.loads(raw)
        return cls(**{k: v for k, v in doc.items() if k in known})

    @property
    def is_auth(self) -> bool:
        return self.kind == AUTH_KIND

    def due_at(self) -> float:
        """When the expiration manager should act next (0: never)."""
        if self.irrevocable or not self.expire_time:
            return 0.0
        return max(self.expire_time, self.next_attempt)


def check_lease_id(lease_id: str) -> bool:
    """Whether ``lease_id`` can name a stored lease (a valid storage key)."""
    try:
        validate_key(lease_id)
    except InvalidKeyError:
        return False
    return True


def _digest(lease_id: str) -> str:
    return hashlib.sha256(lease_id.encode()).hexdigest()[:40]


class LeaseStore:
    """CRUD over lease entries and the token index, in the barrier."""

    def __init__(self, barrier: Backend) -> None:
        self._view = StorageView(barrier, EXPIRE_PREFIX)

    def get(self, lease_id: str) -> LeaseEntry | None:
        if not check_lease_id(lease_id):
            return None
        raw = self._view.get("id/" + lease_id)
        return LeaseEntry.from_json(raw) if raw is not None else None

    def put(self, entry: LeaseEntry) -> None:
        self._view.put("id/" + entry.lease_id, entry.to_json())

    def create(self, entry: LeaseEntry, index_token: str) -> None:
        """The entry and (for a secret obtained with a token) its token index entry, in
        one transaction where storage has them; else the index first, so that a crash
        leaves at worst an index entry naming nothing, never a lease nobody revokes
        with its token."""
        ops: list[Op] = []
        if index_token:
            ops.append(("put", f"token/{index_token}/{_digest(entry.lease_id)}",
                        entry.lease_id.encode()))
        ops.append(("put", "id/" + entry.lease_id, entry.to_json()))
        apply_ops(self._view, ops)

    def delete(self, entry: LeaseEntry) -> None:
        """The entry, then its index entry (a dangling index entry is skipped later)."""
        self._view.delete("id/" + entry.lease_id)
        if entry.token_hash and not entry.is_auth:
            self._view.delete(f"token/{entry.token_hash}/{_digest(entry.lease_id)}")

    def delete_index(self, token_hash: str, lease_id: str) -> None:
        self._view.delete(f"token/{token_hash}/{_digest(lease_id)}")

    def by_token(self, token_hash: str) -> list[str]:
        """The lease ids of the secrets ``token_hash`` obtained (from the index)."""
        found = []
        for key in self._view.list(f"token/{token_hash}/"):
            raw = self._view.get(f"token/{token_hash}/{key}")
            if raw is not None:
                found.append(raw.decode())
        return found

    def children(self, prefix: str) -> list[str]:
        """The immediate children of ``prefix`` ('' or ending in '/'), as LIST shows them."""
        return self._view.list("id/" + prefix)

    def collect(self, prefix: str) -> list[str]:
        """Every lease id under ``prefix`` (ending in '/'), recursively: storage reads
        are proportional to what lies under it, not to everything stored."""
        found: list[str] = []
        stack = [prefix]
        while stack:
            current = stack.pop()
            for key in self._view.list("id/" + current):
                if key.endswith("/"):
                    stack.append(current + key)
                else:
                    found.append(current + key)
        return sorted(found)

    def get_flag(self, key: str) -> bool:
        return self._view.get(key) is not None

    def set_flag(self, key: str) -> None:
        self._view.put(key, b"1")
