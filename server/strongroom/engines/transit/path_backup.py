"""``backup/<name>``: a key's plaintext backup, OpenBao's format (``backup_codec``).

As Vault: only for keys that are both ``exportable`` and ``allow_plaintext_backup``
(both one-way switches). The backup is recorded in the key first (``backup_info``:
time and latest version, persisted), then the stored policy document and its archive
are read back and wrapped, all under the key's node lock so no rotation slips in
between. OpenBao answers every refusal here with a plain error (a 500): so does this.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from strongroom.core.request import Operation, Request, Response
from strongroom.framework import Field, FieldData, FieldType, Path

from . import NAME, backup_codec
from .keystore import ARCHIVE_PREFIX, POLICY_PREFIX
from .keytypes import ERR_SOFT_DELETED, TransitInternalError
from .policy import BackupInfo, Policy

if TYPE_CHECKING:
    from . import TransitBackend


def paths(b: TransitBackend) -> list[Path]:
    def read(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        name = m.group("name")
        now = b.now()

        def record(p: Policy) -> None:
            if p.soft_deleted:
                raise TransitInternalError(ERR_SOFT_DELETED)
            if not p.exportable:
                raise TransitInternalError("exporting is disallowed on the policy")
            if not p.allow_plaintext_backup:
                raise TransitInternalError("plaintext backup is disallowed on the policy")
            p.backup_info = BackupInfo(time=now, version=p.latest_version)

        with b.keys.locked(name):
            if b.keys.update(name, record) is None:
                raise TransitInternalError(f'key "{name}" not found')
            policy_doc = b.ctx.storage.get(POLICY_PREFIX + name)
            archive_doc = b.ctx.storage.get(ARCHIVE_PREFIX + name)
        if policy_doc is None:
            raise TransitInternalError(f'key "{name}" not found')
        return Response(data={"backup": backup_codec.encode(policy_doc, archive_doc)})

    return [Path(rf"backup/{NAME}", {Operation.READ: read},
                 {"name": Field(FieldType.STRING)})]
