"""The ``identity/`` mount: read-only views of the identity store (Vault's
identity_store paths, their basics): ``entity/id/<id>``, ``entity/name/<name>``,
``entity-alias/id/<id>`` (read, and LIST of each collection) and ``lookup/entity``.
Shapes are OpenBao 2.7's (checked against a bao dev server); entities and aliases are
made by logins only (core/results.py), so the write endpoints are not served.
"""

from __future__ import annotations

import re
from typing import Any

from strongroom.core.identity import Entity, EntityAlias, IdentityStore
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, NoRouteError, NotFoundError, multierror
from strongroom.framework import Field, FieldData, Path, PathBackend

_NAMESPACE = "root"


def alias_data(alias: EntityAlias, with_namespace: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "canonical_id": alias.canonical_id,
        "creation_time": alias.creation_time,
        "custom_metadata": None,
        "id": alias.id,
        "last_update_time": alias.last_update_time,
        "local": alias.local,
        "merged_from_canonical_ids": None,
        "metadata": alias.metadata or None,
        "mount_accessor": alias.mount_accessor,
        "mount_path": alias.mount_path,
        "mount_type": alias.mount_type,
        "name": alias.name,
    }
    if with_namespace:
        data["namespace_id"] = _NAMESPACE
    return data


class IdentityBackend(PathBackend):
    def __init__(self, store: IdentityStore) -> None:
        self._store = store
        lookup_fields = {k: Field() for k in ("id", "name", "alias_id", "alias_name",
                                              "alias_mount_accessor")}
        super().__init__([
            Path("entity/id/?", {Operation.LIST: self._list_ids}),
            Path("entity/id/(?P<id>[^/]+)", {Operation.READ: self._read_id},
                 fields={"id": Field()}),
            Path("entity/name/?", {Operation.LIST: self._list_names}),
            Path("entity/name/(?P<name>[^/]+)", {Operation.READ: self._read_name},
                 fields={"name": Field()}),
            Path("entity-alias/id/?", {Operation.LIST: self._list_aliases}),
            Path("entity-alias/id/(?P<id>[^/]+)", {Operation.READ: self._read_alias},
                 fields={"id": Field()}),
            Path("lookup/entity", {Operation.UPDATE: self._lookup}, fields=lookup_fields),
        ])

    def handle(self, req: Request, rel_path: str) -> Response | None:
        if req.operation is Operation.LIST and not rel_path.endswith("/"):
            rel_path += "/"  # Vault's router lists a path with a trailing slash
        try:
            return super().handle(req, rel_path)
        except NoRouteError:
            raise NotFoundError(multierror("unsupported path")) from None

    # -- rendering ------------------------------------------------------------------

    def entity_data(self, entity: Entity) -> dict[str, Any]:
        aliases = [a for a in (self._store.alias(i) for i in entity.alias_ids) if a is not None]
        return {
            "aliases": [alias_data(a, with_namespace=False) for a in aliases],
            "creation_time": entity.creation_time,
            "direct_group_ids": [],
            "disabled": entity.disabled,
            "group_ids": [],
            "id": entity.id,
            "inherited_group_ids": [],
            "last_update_time": entity.last_update_time,
            "merged_entity_ids": None,
            "metadata": entity.metadata or None,
            "name": entity.name,
            "namespace_id": _NAMESPACE,
            "policies": list(entity.policies),
        }

    def _entity_response(self, entity: Entity | None) -> Response:
        if entity is None:
            raise NotFoundError("")
        return Response(data=self.entity_data(entity))

    # -- handlers -----------------------------------------------------------------------

    def _read_id(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return self._entity_response(self._store.entity(m.group("id")))

    def _read_name(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return self._entity_response(self._store.entity_by_name(m.group("name")))

    def _read_alias(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        alias = self._store.alias(m.group("id"))
        if alias is None:
            raise NotFoundError("")
        return Response(data=alias_data(alias))

    def _list_ids(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        keys, info = [], {}
        for entity_id in self._store.entity_ids():
            entity = self._store.entity(entity_id)
            if entity is None:
                continue
            keys.append(entity_id)
            aliases = [a for a in (self._store.alias(i) for i in entity.alias_ids)
                       if a is not None]
            info[entity_id] = {
                "aliases": [{"id": a.id, "mount_accessor": a.mount_accessor,
                             "mount_path": a.mount_path, "mount_type": a.mount_type,
                             "name": a.name} for a in aliases],
                "name": entity.name,
            }
        if not keys:
            raise NotFoundError("")
        return Response(data={"key_info": info, "keys": keys})

    def _list_names(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        keys = self._store.entity_names()
        if not keys:
            raise NotFoundError("")
        return Response(data={"keys": keys})

    def _list_aliases(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        keys, info = [], {}
        for alias_id in self._store.alias_ids():
            alias = self._store.alias(alias_id)
            if alias is None:
                continue
            keys.append(alias_id)
            info[alias_id] = {
                "canonical_id": alias.canonical_id, "custom_metadata": None,
                "local": alias.local, "metadata": alias.metadata or None,
                "mount_accessor": alias.mount_accessor, "mount_path": alias.mount_path,
                "mount_type": alias.mount_type, "name": alias.name,
            }
        if not keys:
            raise NotFoundError("")
        return Response(data={"key_info": info, "keys": keys})

    def _lookup(self, req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        """Vault's pathLookupEntityUpdate: exactly one way of naming the entity."""
        given = {k: str(data.get(k) or "") for k in ("id", "name", "alias_id", "alias_name",
                                                     "alias_mount_accessor")}
        ways = sum(1 for k in ("id", "name", "alias_id") if given[k])
        by_alias = bool(given["alias_name"] or given["alias_mount_accessor"])
        if ways + by_alias == 0:
            raise BadRequestError("query parameter not supplied")
        if ways + by_alias > 1:
            raise BadRequestError("query parameter conflict; please supply distinct set of "
                                  "query parameters")
        store = self._store
        entity: Entity | None = None
        if given["id"]:
            entity = store.entity(given["id"])
        elif given["name"]:
            entity = store.entity_by_name(given["name"])
        else:
            if by_alias and not (given["alias_name"] and given["alias_mount_accessor"]):
                raise BadRequestError("both 'alias_name' and 'alias_mount_accessor' needs "
                                      "to be set")
            alias = (store.alias(given["alias_id"]) if given["alias_id"] else
                     store.alias_by_name(given["alias_mount_accessor"], given["alias_name"]))
            entity = store.entity(alias.canonical_id) if alias is not None else None
        if entity is None:
            return None  # Vault: 204, no body
        return Response(data=self.entity_data(entity))
