"""What the token store keeps about a token (its id is not among it)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import orjson


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
    # Hashes of every ancestor, parent first ([]: orphan; None: made before ancestry was
    # stored, computed on first lookup). A lookup checks them against the tombstones of
    # trees being revoked without reading any ancestor (token_revoke.py).
    ancestors: list[str] | None = None
    # Issue 15: the addresses allowed to use the token (Vault's BoundCIDRs, checked on
    # every use), and what the auth method asked to keep for its renewals (Vault keeps
    # it in the lease's Auth.InternalData).
    bound_cidrs: list[str] = field(default_factory=list)
    internal: dict[str, object] = field(default_factory=dict)
    hash: str = field(default="", repr=False)  # filled on load; not a secret, not stored

    @property
    def orphan(self) -> bool:
        return not self.parent_hash

    def to_json(self) -> bytes:
        doc = asdict(self)
        doc.pop("hash")
        return json.dumps(doc).encode()

    def copy(self) -> TokenEntry:
        """An independent copy (lists and meta too), cheaper than ``dataclasses.replace``."""
        new = object.__new__(TokenEntry)
        fields = dict(self.__dict__)
        fields["policies"] = list(self.policies)
        if self.meta is not None:
            fields["meta"] = dict(self.meta)
        if self.ancestors is not None:
            fields["ancestors"] = list(self.ancestors)
        fields["bound_cidrs"] = list(self.bound_cidrs)
        fields["internal"] = dict(self.internal)
        new.__dict__.update(fields)
        return new

    @classmethod
    def from_json(cls, raw: bytes, token_hash: str) -> TokenEntry:
        return cls(**orjson.loads(raw), hash=token_hash)

    def remaining_ttl(self, now: float) -> int:
        """Seconds left, against ``now`` rounded to the second as Vault's lease ttl()."""
        return max(0, int(self.expire_at - math.floor(now + 0.5))) if self.expire_at else 0
