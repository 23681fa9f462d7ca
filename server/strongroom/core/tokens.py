"""Token store: tokens are kept only as salted HMACs, never in clear.

Lookups hash the presented token and fetch by that hash, so no stored token
is ever compared byte-by-byte against client input.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import string
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from strongroom.physical.base import Backend

_SALT_KEY = "salt"
_ALPHABET = string.ascii_letters + string.digits
SERVICE_TOKEN_PREFIX = "hvs."  # noqa: S105 - a public prefix, not a secret


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
    creation_time: str
    display_name: str = "token"
    meta: dict[str, str] = field(default_factory=dict)
    num_uses: int = 0
    ttl: int = 0
    explicit_max_ttl: int = 0
    period: int = 0
    parent_hash: str = ""
    orphan: bool = False
    renewable: bool = False
    type: str = "service"

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> TokenEntry:
        return cls(**json.loads(raw))


class TokenStore:
    """CRUD over token entries in a storage view (the barrier, so encrypted at rest)."""

    def __init__(self, storage: Backend) -> None:
        self._storage = storage
        self._salt: bytes | None = None

    def _salted(self, value: str) -> str:
        if self._salt is None:
            salt = self._storage.get(_SALT_KEY)
            if salt is None:
                salt = os.urandom(32)
                self._storage.put(_SALT_KEY, salt)
            self._salt = salt
        return hmac.new(self._salt, value.encode(), hashlib.sha256).hexdigest()

    def create(
        self,
        entry: TokenEntry,
        token_id: str | None = None,
    ) -> str:
        """Store ``entry`` and return the token id the client will hold."""
        token = token_id or generate_token_id()
        self._storage.put("id/" + self._salted(token), entry.to_json())
        self._storage.put("accessor/" + self._salted(entry.accessor), self._salted(token).encode())
        return token

    def lookup(self, token: str) -> TokenEntry | None:
        if not token or len(token) > 512:
            return None
        raw = self._storage.get("id/" + self._salted(token))
        return TokenEntry.from_json(raw) if raw is not None else None


def root_token_entry(now: datetime) -> TokenEntry:
    return TokenEntry(
        accessor=generate_accessor(),
        policies=["root"],
        path="auth/token/root",
        creation_time=now.isoformat(),
        display_name="root",
        orphan=True,
    )


def token_lookup_data(entry: TokenEntry, token_id: str) -> dict[str, Any]:
    """The data block of auth/token/lookup-self for ``entry``."""
    created = datetime.fromisoformat(entry.creation_time)
    return {
        "accessor": entry.accessor,
        "creation_time": int(created.timestamp()),
        "creation_ttl": entry.ttl,
        "display_name": entry.display_name,
        "entity_id": "",
        "expire_time": None,
        "explicit_max_ttl": entry.explicit_max_ttl,
        "id": token_id,
        "meta": entry.meta or None,
        "num_uses": entry.num_uses,
        "orphan": entry.orphan,
        "path": entry.path,
        "policies": entry.policies,
        "renewable": entry.renewable,
        "ttl": entry.ttl,
        "type": entry.type,
    }
