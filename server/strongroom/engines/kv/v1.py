"""KV version 1: one JSON object per path, overwritten in place, no history.

Storage (inside the mount's view): the secret at ``a/b`` is the entry ``v1/a/b``,
so LIST maps onto the storage LIST of ``v1/<prefix>`` directly.
"""

from __future__ import annotations

import re

import orjson

from strongroom.core.logical import KV_SECRET, Secret
from strongroom.core.mounts import MountContext
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path, PathBackend

from .common import (
    check_path,
    check_prefix,
    encode_document,
    is_leaf,
    list_response,
    normalize_rel_path,
    not_found,
)
from .parsing import duration_seconds

PREFIX = "v1/"


class KVv1Backend(PathBackend):
    def __init__(self, ctx: MountContext) -> None:
        self._storage = ctx.storage
        self._ctx = ctx
        ops = {
            Operation.READ: self._read,
            Operation.UPDATE: self._write,
            Operation.DELETE: self._delete,
            Operation.LIST: self._list,
        }
        fields = {"path": Field(FieldType.ANY)}
        super().__init__([Path("(?P<path>.*)", ops, fields, existence=self._exists)])

    def handle(self, req: Request, rel_path: str) -> Response | None:
        return super().handle(req, normalize_rel_path(req, rel_path))

    def _exists(self, req: Request, data: FieldData, m: re.Match[str]) -> bool:
        path = m.group("path")
        return is_leaf(path) and self._storage.get(PREFIX + check_path(path)) is not None

    def _read(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        path = m.group("path")
        if not is_leaf(path):
            return not_found()
        raw = self._storage.get(PREFIX + check_path(path))
        if raw is None:
            return not_found()
        doc = orjson.loads(raw)
        # A "kv" secret: the pipeline reports its TTL but registers no lease (as Vault).
        return Response(secret=Secret(KV_SECRET, doc, ttl=self._lease_duration(doc),
                                      renewable=False))

    def _lease_duration(self, doc: dict[str, object]) -> int:
        """A "ttl" (or legacy "lease") key is a hint to readers; Vault echoes it."""
        hint = doc.get("ttl", doc.get("lease"))
        if hint is None:
            return self._ctx.default_lease_ttl
        try:
            return duration_seconds("ttl", hint, allow_negative=True)
        except BadRequestError:
            return self._ctx.default_lease_ttl

    def _write(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        path = m.group("path")
        if not path:
            raise BadRequestError("missing path")
        if not req.data:
            raise BadRequestError("missing data fields")
        self._storage.put(PREFIX + check_path(path), encode_document(req.data))

    def _delete(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        path = m.group("path")
        if is_leaf(path):
            self._storage.delete(PREFIX + check_path(path))

    def _list(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        # OpenBao's KV v1 has no "after"/"limit" (only v2's metadata/ LIST pages).
        prefix = check_prefix(m.group("path"))
        return list_response(self._storage.list(PREFIX + prefix))
