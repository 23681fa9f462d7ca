"""The KV secrets engine: mount option ``version`` "2" is versioned, "1" or none is v1."""

from __future__ import annotations

import re

from strongroom.core.mounts import MountContext
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import StrongroomError
from strongroom.framework import FieldData, Handler, Path, PathBackend

from .v1 import KVv1Backend
from .v2 import KVv2Backend, upgrade_from_v1

__all__ = ["KVv1Backend", "KVv2Backend", "kv_factory"]


class _UnsupportedVersion(PathBackend):
    """A mount whose version option this engine does not know: every request fails,
    without stopping the other mounts from loading."""

    def __init__(self, version: str) -> None:
        self._message = f"unsupported KV version {version!r}: use \"1\" or \"2\""
        ops: dict[Operation, Handler] = {op: self._fail for op in Operation}
        super().__init__([Path(".*", ops, warn_unknown=False)])

    def _fail(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        raise StrongroomError(self._message)


def kv_factory(ctx: MountContext) -> PathBackend:
    version = (ctx.mount.options or {}).get("version", "")
    if version in ("", "1"):
        return KVv1Backend(ctx)
    if version == "2":
        upgrade_from_v1(ctx)
        return KVv2Backend(ctx)
    return _UnsupportedVersion(version)
