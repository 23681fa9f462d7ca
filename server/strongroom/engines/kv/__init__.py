"""The KV secrets engine: mount option ``version`` "2" is versioned, "1" or none is v1."""

from __future__ import annotations

from strongroom.core.mounts import LogicalBackend, MountContext
from strongroom.core.request import Request, Response
from strongroom.errors import StrongroomError

from .v1 import KVv1Backend
from .v2 import KVv2Backend, upgrade_from_v1

__all__ = ["KVv1Backend", "KVv2Backend", "kv_factory"]


class _UnsupportedVersion:
    """A mount whose version option this engine does not know: every request fails,
    without stopping the other mounts from loading."""

    def __init__(self, version: str) -> None:
        self._message = f"unsupported KV version {version!r}: use \"1\" or \"2\""

    def handle(self, req: Request, rel_path: str) -> Response | None:
        raise StrongroomError(self._message)


def kv_factory(ctx: MountContext) -> LogicalBackend:
    version = (ctx.mount.options or {}).get("version", "")
    if version in ("", "1"):
        return KVv1Backend(ctx)
    if version == "2":
        upgrade_from_v1(ctx)
        return KVv2Backend(ctx)
    return _UnsupportedVersion(version)
