"""The authenticated part of ``sys/``: keys, seal, mounts, policies, wrapping."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from strongroom.core.logical import SpecialPaths
from strongroom.core.request import Operation, Request, Response
from strongroom.core.sys.audit import audit_paths
from strongroom.core.sys.leases import lease_paths
from strongroom.core.sys.mounts import mount_paths
from strongroom.core.sys.password_policies import password_policy_paths
from strongroom.core.sys.policies import policy_paths
from strongroom.core.sys.ui_mounts import ui_mount_paths
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path, PathBackend
from strongroom.framework.paths import Handler

if TYPE_CHECKING:
    from strongroom.core.core import Core

# Vault's root-protected sys paths: the capability alone is not enough, sudo is needed.
SUDO_PATHS = ("seal", "step-down", "rotate", "rotate/root", "remount", "mounts/remount",
              "raw", "raw/*", "audit", "audit/*", "auth/*", "leases/revoke-prefix/*",
              "leases/revoke-force/*", "revoke-prefix/*", "revoke-force/*", "leases/lookup/*",
              "config/auditing/*")
UNAUTHENTICATED_PATHS = ("wrapping/lookup", "internal/ui/mounts", "internal/ui/mounts/*")
_WRAP_TOKEN = {"token": Field(FieldType.STRING)}


class SystemBackend(PathBackend):
    def __init__(self, core: Core) -> None:
        self._core = core
        super().__init__(
            [
                Path("key-status", {Operation.READ: self._key_status}),
                Path("rotate", {Operation.UPDATE: self._rotate}),
                Path("rotate/root", {Operation.UPDATE: self._rotate_root}),
                # PGP-encrypted rekey backups; Vault's paths, and the recovery one also
                # under sys/rekey-recovery-key/ beside that target's other endpoints.
                *(Path(path, {Operation.READ: self._backup_reader(target),
                              Operation.DELETE: self._backup_deleter(target)})
                  for path, target in (("rekey/backup", "barrier"),
                                       ("rekey/recovery-key-backup", "recovery"),
                                       ("rekey-recovery-key/backup", "recovery"))),
                Path("seal", {Operation.UPDATE: self._seal}),
                Path("step-down", {Operation.UPDATE: self._step_down}),
                *lease_paths(core),
                *mount_paths(core),
                *ui_mount_paths(core),
                *policy_paths(core),
                *password_policy_paths(core),
                *audit_paths(core),
                Path("wrapping/wrap", {Operation.UPDATE: self._wrap}, warn_unknown=False),
                Path("wrapping/lookup", {Operation.UPDATE: self._wrap_lookup,
                                         Operation.READ: self._wrap_lookup}, _WRAP_TOKEN),
                Path("wrapping/unwrap", {Operation.UPDATE: self._unwrap}, _WRAP_TOKEN),
                Path("wrapping/rewrap", {Operation.UPDATE: self._rewrap}, _WRAP_TOKEN),
            ],
            special_paths=SpecialPaths(unauthenticated=UNAUTHENTICATED_PATHS, sudo=SUDO_PATHS),
        )

    def _key_status(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        keyring = self._core.barrier.keyring
        active = keyring.active
        return Response(
            data={
                "term": active.term,
                "install_time": active.install_time.isoformat().replace("+00:00", "Z"),
                # Node-wide and persisted across restarts (barrier/counter.py).
                "encryptions": keyring.encryptions(),
            },
            legacy_top_level=True,
        )

    def _rotate(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        self._core.coordinator.rotate()
        self._core.sync()

    def _rotate_root(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        self._core.coordinator.rotate_root()

    def _backup_reader(self, target: str) -> Handler:
        def read(req: Request, data: FieldData, m: re.Match[str]) -> Response:
            return Response(data=self._core.coordinator.rekey_backup(target))

        return read

    def _backup_deleter(self, target: str) -> Handler:
        def delete(req: Request, data: FieldData, m: re.Match[str]) -> None:
            self._core.coordinator.rekey_backup_delete(target)

        return delete

    def _seal(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        self._core.coordinator.seal()
        self._core.sync()

    def _step_down(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        self._core.coordinator.step_down()

    # -- wrapping -----------------------------------------------------------

    def _wrap(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        if not req.wrap_ttl:
            raise BadRequestError("endpoint requires response wrapping to be used")
        # An empty payload is wrapped too (OpenBao unwraps it to {}).
        resp = self._core.wrapper.wrap(Response(data=dict(req.data)), req.wrap_ttl, req.path)
        req.wrap_ttl = 0  # already wrapped; the core must not wrap the wrapping
        return resp

    def _wrap_lookup(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return self._core.wrapper.lookup(self._core.wrapper.resolve(req, data.get("token")))

    def _unwrap(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return self._core.wrapper.unwrap(self._core.wrapper.resolve(req, data.get("token")))

    def _rewrap(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return self._core.wrapper.rewrap(self._core.wrapper.resolve(req, data.get("token")))

