"""KV version 2: versioned secrets with check-and-set, soft delete and metadata."""

from __future__ import annotations

import logging
import re

from strongroom.barrier.view import StorageView
from strongroom.core.mounts import MountContext
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import StrongroomError
from strongroom.framework import FieldData, Handler, Path, PathBackend

from .common import key_lock, normalize_rel_path
from .v1 import PREFIX as V1_PREFIX
from .v2_data import DataPaths
from .v2_metadata import MetadataPaths
from .v2_store import KeyMetadata, KVConfig, V2Store

log = logging.getLogger(__name__)

_ROOTS = ("metadata", "data", "delete", "undelete", "destroy")
_CLI_VERBS = {
    Operation.READ: "get",
    Operation.CREATE: "put",
    Operation.UPDATE: "put",
    Operation.PATCH: "patch",
    Operation.LIST: "list",
    Operation.DELETE: "delete",
}


class KVv2Backend(PathBackend):
    def __init__(self, ctx: MountContext) -> None:
        store = V2Store(ctx.storage, ctx.clock)
        invalid_ops: dict[Operation, Handler] = {
            op: self._invalid_path
            for op in _CLI_VERBS
            if op is not Operation.CREATE
        }
        super().__init__([
            *MetadataPaths(store, ctx.mount.uuid).paths(),
            *DataPaths(store, ctx.mount.uuid).paths(),
            # Last: anything else is a v1-style path, which Vault answers with a hint.
            Path(".*", invalid_ops, warn_unknown=False),
        ])

    def handle(self, req: Request, rel_path: str) -> Response | None:
        return super().handle(req, normalize_rel_path(req, rel_path))

    def _invalid_path(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        if m.group(0) in _ROOTS:
            hint = "Non-listing operations on the root of a K/V v2 mount are not supported."
        else:
            hint = (
                "Invalid path for a versioned K/V secrets engine. See the API docs for the "
                "appropriate API endpoints to use. If using the Vault CLI, use "
                f"'vault kv {_CLI_VERBS[req.operation]}' for this operation."
            )
        return Response(status=404, warnings=[hint])


def upgrade_from_v1(ctx: MountContext) -> None:
    """A mount tuned from version 1 to 2: each v1 entry becomes version 1 of its key.

    Idempotent and resumable: an entry is removed only once its version exists,
    and a key that already has v2 metadata keeps it (the v1 entry is dropped).
    """
    storage = ctx.storage
    if not storage.list(V1_PREFIX):
        return
    store = V2Store(storage, ctx.clock)
    try:
        for path in _walk(storage, V1_PREFIX):
            with key_lock(ctx.mount.uuid, path):
                raw = storage.get(V1_PREFIX + path)
                if raw is not None and store.get_meta(path) is None:
                    store.write_version(KeyMetadata(key=path), raw, KVConfig())
                storage.delete(V1_PREFIX + path)
    except StrongroomError as exc:  # retried at the next mount load
        log.error("event=kv_upgrade_failed mount=%s error=%s", ctx.mount.path, exc.message)


def _walk(storage: StorageView, prefix: str, rel: str = "") -> list[str]:
    out: list[str] = []
    for child in storage.list(prefix + rel):
        if child.endswith("/"):
            out.extend(_walk(storage, prefix, rel + child))
        else:
            out.append(rel + child)
    return out
