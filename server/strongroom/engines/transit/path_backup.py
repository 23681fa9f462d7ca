"""``backup/<name>``: a key's plaintext backup, OpenBao's format (``backup_codec``).

As Vault: only for keys that are both ``exportable`` and ``allow_plaintext_backup``
(both are one-way switches); the backup is recorded in the key (``backup_info``: time
and latest version) before it is taken, under the key's node lock, and the blob holds
the stored policy document and its archive exactly as stored.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path

from . import backup_codec
from .path_export import NAME
from .policy import BackupInfo, Policy

if TYPE_CHECKING:
    from . import TransitBackend


def paths(b: TransitBackend) -> list[Path]:
    def read(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        name = m.group("name")
        now = b.now()

        def record(p: Policy) -> None:
            if not p.exportable:
                raise BadRequestError("exporting is disallowed on the policy")
            if not p.allow_plaintext_backup:
                raise BadRequestError("plaintext backup is disallowed on the policy")
            p.backup_info = BackupInfo(time=now, version=p.latest_version)

        with b.keystore.locked(name):
            if b.keystore.update(name, record) is None:
                raise BadRequestError(f'key "{name}" not found')
            policy_doc = b.ctx.storage.get(f"policy/{name}")
            archive_doc = b.ctx.storage.get(f"archive/{name}")
        if policy_doc is None:
            raise BadRequestError(f'key "{name}" not found')
        return Response(data={"backup": backup_codec.encode(policy_doc, archive_doc)})

    return [Path(rf"backup/(?P<name>{NAME})", {Operation.READ: read},
                 {"name": Field(FieldType.STRING)})]
