"""Transport-independent request and response, the core's only vocabulary.

The HTTP layer translates to and from these; nothing below it knows HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

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
    request_id: str = ""
    wrap_ttl: int = 0
    # Set by the core once the token is authenticated; engines read, never write.
    token_entry: TokenEntry | None = field(default=None, repr=False)
    mount_path: str = ""


@dataclass
class Response:
    """A logical response; ``data=None`` with no auth/secret becomes 204."""

    data: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    auth: dict[str, Any] | None = None
    lease_id: str = ""
    lease_duration: int = 0
    renewable: bool = False
    wrap_info: dict[str, Any] | None = None
    mount_type: str = ""
    status: int = 200
    # Raw responses (sys/health, sys/seal-status ...) skip the envelope, as in Vault.
    raw: bool = False
    # Vault's older sys endpoints repeat their data fields at the top level.
    legacy_top_level: bool = False
