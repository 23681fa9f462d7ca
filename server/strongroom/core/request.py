"""Transport-independent request and response, the core's only vocabulary.

The HTTP layer translates to and from these; nothing below it knows HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from strongroom.core.logical import Auth, Secret
from strongroom.core.tokens import TokenEntry


class Operation(StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"
    LIST = "list"
    HELP = "help"


@dataclass
class Request:
    operation: Operation
    path: str
    data: dict[str, Any] = field(default_factory=dict)
    token: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)
    remote_addr: str = ""
    remote_port: int = 0
    request_id: str = ""
    wrap_ttl: int = 0
    # Set by the core once the token is authenticated; engines read, never write.
    token_entry: TokenEntry | None = field(default=None, repr=False)
    # A limited-use token's uses before this request spends one (the audit entry's
    # remaining_uses, as Vault's ClientTokenRemainingUses).
    client_token_remaining_uses: int = 0
    mount_path: str = ""
    # The TLS client certificate (DER) the connection presented, if any (cert auth).
    client_cert_der: bytes | None = field(default=None, repr=False)


@dataclass
class Response:
    """A logical response; ``data=None`` with no auth/secret becomes 204.

    A leased result carries a typed ``secret`` (its ``data`` is the response's data
    unless the backend gives ``data`` too); a login carries a typed ``auth``. The
    pipeline's lease and login stages act on them; the HTTP layer renders them into
    Vault's envelope (top-level lease fields, the ``auth`` block).
    """

    data: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    auth: Auth | None = None
    secret: Secret | None = None
    wrap_info: dict[str, Any] | None = None
    mount_type: str = ""
    status: int = 200
    # Raw responses (sys/health, sys/seal-status ...) skip the envelope, as in Vault.
    raw: bool = False
    # Vault's older sys endpoints repeat their data fields at the top level.
    legacy_top_level: bool = False

    def __post_init__(self) -> None:
        if self.data is None and self.secret is not None:
            self.data = self.secret.data

    # Vault's envelope takes these from the secret (http/logical.go).
    @property
    def lease_id(self) -> str:
        return self.secret.lease_id if self.secret is not None else ""

    @property
    def lease_duration(self) -> int:
        return self.secret.ttl if self.secret is not None else 0

    @property
    def renewable(self) -> bool:
        return self.secret.renewable if self.secret is not None else False
