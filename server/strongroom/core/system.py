"""The authenticated part of ``sys/``: key status, rotation, seal, mounts."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from strongroom.core.request import Operation, Request, Response
from strongroom.framework import FieldData, Path, PathBackend

if TYPE_CHECKING:
    from strongroom.core.core import Core


def _mount_view(entry_dict: dict[str, Any]) -> dict[str, Any]:
    return entry_dict


class SystemBackend(PathBackend):
    def __init__(self, core: Core) -> None:
        self._core = core
        super().__init__(
            [
                Path("key-status", {Operation.READ: self._key_status}),
                Path("rotate", {Operation.UPDATE: self._rotate}),
                Path("seal", {Operation.UPDATE: self._seal}),
                Path("mounts/?", {Operation.READ: self._list_mounts}),
            ]
        )

    def _key_status(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        ring = self._core.barrier.keyring
        active = ring.active
        return Response(
            data={
                "term": active.term,
                "install_time": active.install_time.isoformat().replace("+00:00", "Z"),
                "encryptions": self._core.barrier.encryptions,
            }
        )

    def _rotate(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        self._core.coordinator.rotate()
        self._core.sync()

    def _seal(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        self._core.coordinator.seal()
        self._core.sync()

    def _list_mounts(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        mounts: dict[str, Any] = {}
        for entry in self._core.router.entries():
            mounts[entry.path] = {
                "type": entry.type,
                "description": entry.description,
                "accessor": entry.accessor,
                "uuid": entry.uuid,
                "options": entry.options or None,
                "local": entry.local,
                "seal_wrap": entry.seal_wrap,
                "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": False},
            }
        return Response(data=mounts)
