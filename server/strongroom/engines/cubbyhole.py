"""Cubbyhole: private storage per token, unreadable by any other token, even root.

Each token's entries live under its salted hash; revoking the token destroys them.
"""

from __future__ import annotations

import json
import re

from strongroom.barrier.view import StorageView
from strongroom.core.mounts import MountContext
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, NotFoundError, PermissionDeniedError
from strongroom.framework import FieldData, Path, PathBackend


class CubbyholeBackend(PathBackend):
    def __init__(self, ctx: MountContext) -> None:
        self._storage = ctx.storage
        ops = {
            Operation.READ: self._read,
            Operation.UPDATE: self._write,
            Operation.CREATE: self._write,
            Operation.DELETE: self._delete,
            Operation.LIST: self._list,
        }
        super().__init__([Path("(?P<path>.*)", ops, existence=self._exists, warn_unknown=False)])

    @classmethod
    def factory(cls, ctx: MountContext) -> CubbyholeBackend:
        return cls(ctx)

    def _own(self, req: Request) -> StorageView:
        if req.token_entry is None:
            raise PermissionDeniedError()
        if req.token_entry.type != "service":
            # Batch tokens are never revoked, so their cubbyhole would never be cleaned up.
            raise BadRequestError("cubbyhole operations are only supported by 'service' type "
                                  "tokens")
        return self._storage.sub_view(req.token_entry.hash + "/")

    def _exists(self, req: Request, data: FieldData, m: re.Match[str]) -> bool:
        path = m.group("path").strip("/")
        return bool(path) and self._own(req).get(path) is not None

    def _read(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        path = m.group("path").strip("/")
        raw = self._own(req).get(path) if path else None
        if raw is None:
            raise NotFoundError("")
        return Response(data=json.loads(raw))

    def _write(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        path = m.group("path").strip("/")
        if not path:
            raise BadRequestError("missing path")
        if not req.data:
            raise BadRequestError("missing data fields")
        self._own(req).put(path, json.dumps(req.data).encode())

    def _delete(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        path = m.group("path").strip("/")
        if not path:
            raise BadRequestError("missing path")
        self._own(req).delete(path)

    def _list(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        path = m.group("path").strip("/")
        keys = self._own(req).list(path + "/" if path else "")
        if not keys:
            raise NotFoundError("")
        return Response(data={"keys": keys})
