"""``rotate-role/<name>`` and the periodic rotation of static roles.

Rotation is due-time based: ``periodic()`` (run by the node's owner on the active
node every STRONGROOM_MOUNT_PERIODIC_INTERVAL seconds, 60 by default) rotates each
static role whose ``last rotation + rotation_period`` has passed, so a period is
honoured to within one interval whatever the interval. A failed rotation keeps the
old password (still valid on the server) and is retried 10 s later, as Vault does.
Rotations of one role are serialized across the node's processes (node_lock): a
rotate-role request in a worker and the owner's periodic run cannot interleave.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from strongroom.core.request import Operation, Request
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path
from strongroom.node.locks import node_lock

from .plugins import DatabaseError
from .store import STATIC_ROLE, StaticRole

if TYPE_CHECKING:
    from . import DatabaseBackend

log = logging.getLogger(__name__)
RETRY_SECONDS = 10


def paths(b: DatabaseBackend) -> list[Path]:
    from . import NAME

    def rotate(req: Request, data: FieldData, m: re.Match[str]) -> None:
        name = m.group("name")
        role = b.store.static_role(name)
        if role is None:
            raise BadRequestError("no static role found for role name")
        rotate_static(b, name, role)

    return [Path(f"rotate-role/{NAME}", {Operation.UPDATE: rotate},
                 {"name": Field(FieldType.STRING)})]


def rotate_static(b: DatabaseBackend, name: str, role: StaticRole, store: bool = True) -> None:
    """Give the static account a new password, on the server then in storage."""
    with node_lock(f"database-static:{b.ctx.mount.uuid}:{name}"):
        if store:
            current = b.store.static_role(name)
            if current is None:
                raise BadRequestError("no static role found for role name")
            role = current
        config = b.config(role.db_name)
        password = b.generate_password(config)
        now = b.now().timestamp()
        if store:
            role.pending_password = password
            b.store.put_static_role(name, role)
        try:
            with b.serialized(role.db_name):
                b.plugin(role.db_name).set_password(role.username, password,
                                                    role.rotation_statements)
        except DatabaseError as exc:
            if store:
                role.retry_at, role.pending_password = now + RETRY_SECONDS, ""
                b.store.put_static_role(name, role)
            log.warning("event=db_static_rotation_failed role=%s error=%s", name, exc.message)
            raise DatabaseError(f"error setting credentials: {exc.message}") from None
        role.password, role.last_vault_rotation, role.retry_at = password, now, 0.0
        role.pending_password = ""
        if store:
            b.store.put_static_role(name, role)


def rotate_due(b: DatabaseBackend) -> None:
    """Rotate every static role whose rotation (or retry) time has come."""
    now = b.now().timestamp()
    for name in b.store.names(STATIC_ROLE):
        role = b.store.static_role(name)
        if role is None:
            continue
        # A rotation cut short (pending_password left behind) is redone at once: the
        # root connection sets a new password whichever one the server has now.
        due = (now if role.pending_password else role.retry_at if role.retry_at else
               role.last_vault_rotation + role.rotation_period)
        if due > now:
            continue
        try:
            rotate_static(b, name, role)
        except Exception as exc:  # noqa: BLE001 - one role's failure must not stop the rest
            log.warning("event=db_periodic_rotation_failed role=%s error=%s", name,
                        type(exc).__name__)
