"""A trusted certificate role (Vault's ``CertEntry``), as stored under ``cert/<name>``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from strongroom.auth.tokenutil import TokenParams
from strongroom.barrier.view import StorageView

PREFIX = "cert/"

# The constraint lists, in the order Vault's read answers them.
LIST_FIELDS = ("allowed_names", "allowed_common_names", "allowed_dns_sans",
               "allowed_email_sans", "allowed_uri_sans", "allowed_organizational_units",
               "required_extensions", "allowed_metadata_extensions")


@dataclass
class CertEntry:
    name: str
    certificate: str = ""
    display_name: str = ""
    # None: never given (Vault's nil slice, read back as null); [] given empty.
    allowed_names: list[str] | None = None
    allowed_common_names: list[str] | None = None
    allowed_dns_sans: list[str] | None = None
    allowed_email_sans: list[str] | None = None
    allowed_uri_sans: list[str] | None = None
    allowed_organizational_units: list[str] | None = None
    required_extensions: list[str] | None = None
    allowed_metadata_extensions: list[str] | None = None
    token: TokenParams = field(default_factory=TokenParams)
    # Vault's deprecated fields, kept as given (a read shows them while they are set).
    policies: list[str] = field(default_factory=list)
    ttl: int = 0
    max_ttl: int = 0
    period: int = 0
    bound_cidrs: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        doc = asdict(self)
        doc["token"] = self.token.to_json()
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> CertEntry:
        doc: dict[str, Any] = json.loads(raw)
        token = TokenParams.from_json(doc.pop("token", {}) or {})
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        return cls(token=token, **known)


def load(storage: StorageView, name: str) -> CertEntry | None:
    raw = storage.get(PREFIX + name.lower())
    return None if raw is None else CertEntry.from_json(raw)


def save(storage: StorageView, entry: CertEntry) -> None:
    storage.put(PREFIX + entry.name, entry.to_json())


def names(storage: StorageView) -> list[str]:
    return sorted(storage.list(PREFIX))
