"""The identity store: one entity per person or machine, one alias per (auth mount,
principal) that logged in (Vault's ``identity_store``, its entity and alias basics).

The login stage (core/results.py) calls ``fetch_or_create`` with the mount that
authenticated and the method's ``Auth.alias``: the first login creates an entity
and its alias, every later one finds the same entity (``entity_id`` on the token).
Entries live in the barrier under ``sys/identity/`` (the ``identity/`` mount serves
them read-only: core/identity_backend.py). Creation is serialized node-wide per
alias (``node_lock``), so two workers logging one user in at once make one entity;
reads are cached per worker and dropped on any change under the prefix (the write
notifier calls ``invalidate`` in every process).
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from strongroom.barrier.view import StorageView
from strongroom.core.logical import Alias
from strongroom.core.mounts import MountEntry
from strongroom.node.locks import node_lock
from strongroom.physical.base import Backend
from strongroom.policy.template import AliasInfo, IdentityInfo

IDENTITY_PREFIX = "sys/identity/"
_ENTITY = "entity/"
_ALIAS = "alias/"
_ALIAS_INDEX = "alias-index/"
_ENTITY_NAME = "entity-name/"
_MISSING = object()


def _timestamp(when: datetime) -> str:
    # Vault renders identity times as RFC 3339 with nanoseconds and a Z.
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


@dataclass
class EntityAlias:
    id: str
    canonical_id: str
    mount_accessor: str
    mount_type: str
    mount_path: str
    name: str
    metadata: dict[str, str] = field(default_factory=dict)
    creation_time: str = ""
    last_update_time: str = ""
    local: bool = False

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> EntityAlias:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


@dataclass
class Entity:
    id: str
    name: str
    metadata: dict[str, str] = field(default_factory=dict)
    policies: list[str] = field(default_factory=list)
    alias_ids: list[str] = field(default_factory=list)
    creation_time: str = ""
    last_update_time: str = ""
    disabled: bool = False

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Entity:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


def _alias_key(accessor: str, name: str) -> str:
    return hashlib.sha256(f"{accessor}\x00{name}".encode()).hexdigest()


class IdentityStore:
    def __init__(self, barrier: Backend, clock: Callable[[], datetime]) -> None:
        self._view = StorageView(barrier, IDENTITY_PREFIX)
        self._clock = clock
        self._lock = threading.Lock()
        # (accessor, alias name) -> (entity id, alias metadata): what a login needs.
        self._by_alias: dict[str, tuple[str, dict[str, str]]] = {}
        # entity id -> what templated policies may name (policy/template.py).
        self._templates: dict[str, IdentityInfo | None] = {}

    def invalidate(self, _key: str = "") -> None:
        with self._lock:
            self._by_alias = {}
            self._templates = {}

    def template_info(self, entity_id: str) -> IdentityInfo | None:
        """The entity's values for templated policies (cached until a change)."""
        cached = self._templates.get(entity_id, _MISSING)
        if cached is not _MISSING:
            return cached  # type: ignore[return-value]
        entity = self.entity(entity_id)
        info = None
        if entity is not None:
            aliases = [a for a in (self.alias(i) for i in entity.alias_ids) if a is not None]
            info = IdentityInfo(
                entity_id=entity.id, entity_name=entity.name,
                metadata=tuple(sorted(entity.metadata.items())),
                aliases=tuple(sorted((a.mount_accessor, AliasInfo(
                    a.id, a.name, tuple(sorted(a.metadata.items())))) for a in aliases)))
        with self._lock:
            if len(self._templates) > 10_000:
                self._templates = {}
            self._templates[entity_id] = info
        return info

    # -- the login stage -----------------------------------------------------------

    def fetch_or_create(self, mount: MountEntry, alias: Alias) -> tuple[Entity, bool]:
        """The entity ``alias`` (as ``mount`` names it) belongs to, created with its
        alias on the first login (then True); the alias's metadata follows the method's."""
        key = _alias_key(mount.accessor, alias.name)
        cached = self._by_alias.get(key)
        if cached is not None and cached[1] == alias.metadata:
            entity = self.entity(cached[0])
            if entity is not None:
                return entity, False
        with node_lock("identity:" + key):
            # Re-read under the lock: another worker may have created it meanwhile.
            existing = self._read_alias_by_key(key)
            if existing is not None:
                entity = self.entity(existing.canonical_id)
                if entity is not None:
                    if existing.metadata != alias.metadata:
                        existing.metadata = dict(alias.metadata)
                        existing.last_update_time = _timestamp(self._clock())
                        self._put(_ALIAS + existing.id, asdict(existing))
                    self._remember(key, entity.id, alias.metadata)
                    return entity, False
            entity = self._create(mount, alias, key)
        self._remember(key, entity.id, alias.metadata)
        return entity, True

    def _create(self, mount: MountEntry, alias: Alias, key: str) -> Entity:
        now = _timestamp(self._clock())
        entity_id = str(uuid.uuid4())
        alias_id = str(uuid.uuid4())
        entity = Entity(id=entity_id, name="entity_" + entity_id.split("-")[0],
                        alias_ids=[alias_id], creation_time=now, last_update_time=now)
        record = EntityAlias(id=alias_id, canonical_id=entity_id,
                             mount_accessor=mount.accessor, mount_type=mount.type,
                             mount_path="auth/" + mount.path.removeprefix("auth/"),
                             name=alias.name,
                             metadata=dict(alias.metadata), creation_time=now,
                             last_update_time=now, local=mount.local)
        # One transaction: never an index pointing at a missing alias or entity.
        self._view.transaction([
            ("put", _ENTITY + entity_id, _encode(asdict(entity))),
            ("put", _ALIAS + alias_id, _encode(asdict(record))),
            ("put", _ENTITY_NAME + entity.name, entity_id.encode()),
            ("put", _ALIAS_INDEX + key, alias_id.encode()),
        ])
        return entity

    def _remember(self, key: str, entity_id: str, metadata: dict[str, str]) -> None:
        with self._lock:
            self._by_alias[key] = (entity_id, dict(metadata))

    def _read_alias_by_key(self, key: str) -> EntityAlias | None:
        raw = self._view.get(_ALIAS_INDEX + key)
        return None if raw is None else self.alias(raw.decode())

    def _put(self, key: str, doc: dict[str, Any]) -> None:
        self._view.put(key, _encode(doc))

    # -- reads (the identity/ endpoints) ---------------------------------------------

    def entity(self, entity_id: str) -> Entity | None:
        doc = self._get_json(_ENTITY + entity_id) if _safe(entity_id) else None
        return None if doc is None else Entity.from_doc(doc)

    def entity_by_name(self, name: str) -> Entity | None:
        if not _safe(name):
            return None
        raw = self._view.get(_ENTITY_NAME + name)
        return None if raw is None else self.entity(raw.decode())

    def alias(self, alias_id: str) -> EntityAlias | None:
        doc = self._get_json(_ALIAS + alias_id) if _safe(alias_id) else None
        return None if doc is None else EntityAlias.from_doc(doc)

    def alias_by_name(self, accessor: str, name: str) -> EntityAlias | None:
        return self._read_alias_by_key(_alias_key(accessor, name))

    def entity_ids(self) -> list[str]:
        return sorted(self._view.list(_ENTITY))

    def entity_names(self) -> list[str]:
        return sorted(self._view.list(_ENTITY_NAME))

    def alias_ids(self) -> list[str]:
        return sorted(self._view.list(_ALIAS))

    def _get_json(self, key: str) -> dict[str, Any] | None:
        raw = self._view.get(key)
        if raw is None:
            return None
        doc = json.loads(raw)
        return doc if isinstance(doc, dict) else None


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _safe(name: str) -> bool:
    """A name usable as one storage key segment (ids and names come from URLs)."""
    return bool(name) and "/" not in name and name not in (".", "..") and "\x00" not in name
