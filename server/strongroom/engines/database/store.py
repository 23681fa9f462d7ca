"""What the engine keeps in its mount's storage view (encrypted by the barrier):
``config/<name>``, ``role/<name>``, ``static-role/<name>`` (Vault's layout)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

from strongroom.barrier.view import StorageView

CONFIG, ROLE, STATIC_ROLE = "config/", "role/", "static-role/"
T = TypeVar("T")


@dataclass
class DatabaseConfig:
    plugin_name: str = ""
    plugin_version: str = ""
    connection_details: dict[str, Any] = field(default_factory=dict)
    allowed_roles: list[str] = field(default_factory=list)
    root_credentials_rotate_statements: list[str] = field(default_factory=list)
    password_policy: str = ""
    verify_connection: bool = True
    # Vault's rotate-root WAL: the new root password, stored before the server is
    # changed, so a crash between the two cannot lose the only working password.
    pending_root_password: str = ""


@dataclass
class Role:
    db_name: str = ""
    creation_statements: list[str] = field(default_factory=list)
    revocation_statements: list[str] = field(default_factory=list)
    rollback_statements: list[str] = field(default_factory=list)
    renew_statements: list[str] = field(default_factory=list)
    default_ttl: int = 0
    max_ttl: int = 0
    credential_type: str = "password"  # noqa: S105 - a credential kind, not a secret


@dataclass
class StaticRole:
    db_name: str = ""
    username: str = ""
    rotation_period: int = 0
    rotation_statements: list[str] = field(default_factory=list)
    credential_type: str = "password"  # noqa: S105 - a credential kind, not a secret
    password: str = ""
    # Stored before the server is changed (Vault's WAL): a rotation cut short by a
    # crash is redone at the next periodic run, whichever password the server has.
    pending_password: str = ""
    last_vault_rotation: float = 0.0  # epoch seconds; 0: never rotated
    # A rotation that failed is retried from this time on (Vault re-queues it 10 s on).
    retry_at: float = 0.0


def _load(storage: StorageView, key: str, cls: type[T]) -> T | None:
    raw = storage.get(key)
    if raw is None:
        return None
    doc = json.loads(raw)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in doc.items() if k in known})


def _save(storage: StorageView, key: str, obj: object) -> None:
    storage.put(key, json.dumps(asdict(obj)).encode())  # type: ignore[call-overload]


class Store:
    def __init__(self, storage: StorageView) -> None:
        self.storage = storage

    def config(self, name: str) -> DatabaseConfig | None:
        return _load(self.storage, CONFIG + name, DatabaseConfig)

    def put_config(self, name: str, config: DatabaseConfig) -> None:
        _save(self.storage, CONFIG + name, config)

    def role(self, name: str) -> Role | None:
        return _load(self.storage, ROLE + name, Role)

    def put_role(self, name: str, role: Role) -> None:
        _save(self.storage, ROLE + name, role)

    def static_role(self, name: str) -> StaticRole | None:
        return _load(self.storage, STATIC_ROLE + name, StaticRole)

    def put_static_role(self, name: str, role: StaticRole) -> None:
        _save(self.storage, STATIC_ROLE + name, role)

    def names(self, prefix: str) -> list[str]:
        return sorted(k for k in self.storage.list(prefix) if not k.endswith("/"))
