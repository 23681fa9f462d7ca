"""``restore[/<name>]``: a key back from a backup (OpenBao's or ours), ``force`` to replace.

As Vault: the name is the URL's, else the backup's; an existing key is replaced only
with ``force``; the archive in the backup is stored first, then the policy, marked
``restore_info`` (time and latest version). Unlike OpenBao, which stores whatever
decodes, the backup is checked before anything is written (a known key type, the
versions it claims present, key material of the right shape): a tampered or truncated
backup is a 400 and leaves storage as it was.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from strongroom.core.request import Operation, Request
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path

from . import backup_codec, policy_json
from .policy import RestoreInfo

if TYPE_CHECKING:
    from . import TransitBackend


def paths(b: TransitBackend) -> list[Path]:
    def write(req: Request, data: FieldData, m: re.Match[str]) -> None:
        blob = data.get("backup") or ""
        force = bool(data.get("force"))
        if blob == "":
            raise BadRequestError("'backup' must be supplied")
        name = m.group("name") or ""
        if "/" in name:
            raise BadRequestError("key names cannot be paths")
        backup = backup_codec.decode(blob)
        if name:
            backup.policy["name"] = name
        name = backup.policy["name"]
        try:
            p = policy_json.loads(backup.policy_doc())
        except BadRequestError as exc:
            raise BadRequestError(f"invalid backup: {exc.message}") from None
        p.restore_info = RestoreInfo(time=b.now(), version=p.latest_version)
        with b.keystore.locked(name):
            if b.keystore.get(name) is not None and not force:
                raise BadRequestError(f'key "{name}" already exists')
            b.keystore.restore(p, backup.archive_doc())

    fields = {"backup": Field(FieldType.STRING), "name": Field(FieldType.STRING),
              "force": Field(FieldType.BOOL, default=False)}
    return [Path(r"restore(?:/(?P<name>.+))?", {Operation.UPDATE: write}, fields)]
