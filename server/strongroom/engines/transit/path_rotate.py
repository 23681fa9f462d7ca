"""``keys/<name>/rotate``, and the automatic rotation ``periodic`` runs.

Auto-rotation (Vault's ``autoRotateKeys``): at most once an hour per process, every
key whose ``auto_rotate_period`` has passed since its latest version was created gets
a new version. It runs in the node's owner process on the active node only.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, StrongroomError
from strongroom.framework import Field, FieldData, FieldType, Path

from .common import format_policy
from .policy import ERR_SOFT_DELETED, Policy, TransitInternalError

if TYPE_CHECKING:
    from . import TransitBackend

log = logging.getLogger(__name__)
CHECK_INTERVAL = 3600.0  # seconds between scans, as Vault


def rotate_policy(b: TransitBackend, p: Policy) -> None:
    """Vault's ``Policy.Rotate`` on a fresh copy (the keystore persists it)."""
    if p.soft_deleted:
        raise TransitInternalError(ERR_SOFT_DELETED)  # a plain error (500) in OpenBao
    if p.imported and not p.allow_imported_key_rotation:
        raise TransitInternalError(f"imported key {p.name} does not allow rotation within "
                                   "Vault")
    p.rotate(b.now())
    p.imported = False


def paths(b: TransitBackend) -> list[Path]:
    from . import NAME

    def rotate(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        if data.get("external_key_ref"):
            name = m.group("name")
            policy = b.keys.get(name)
            if policy is None:
                raise BadRequestError("key not found")
            raise BadRequestError(f"cannot use external_key_ref on key of type "
                                  f"{policy.type.api_name}")
        updated = b.keys.update(m.group("name"), lambda p: rotate_policy(b, p))
        if updated is None:
            raise BadRequestError("key not found")
        return Response(data=format_policy(updated))

    fields = {"name": Field(FieldType.STRING),
              "external_key_ref": Field(FieldType.STRING, default="")}
    return [Path(f"keys/{NAME}/rotate", {Operation.UPDATE: rotate}, fields)]


def auto_rotate(b: TransitBackend, force: bool = False) -> int:
    """Rotate every key due; returns how many were rotated. ``force`` skips the hourly
    throttle (tests, and a first run)."""
    now_mono = time.monotonic()
    if not force and now_mono < b.auto_rotate_after:
        return 0
    b.auto_rotate_after = now_mono + CHECK_INTERVAL
    rotated = 0
    for name in b.keys.names():
        try:
            # From storage: this process (the owner) may hold an older copy.
            policy = b.keys.read(name)
            if policy is None or not _due(b, policy):
                continue

            def rotate_if_due(p: Policy) -> bool:
                if not _due(b, p):
                    return False  # another process rotated it meanwhile
                rotate_policy(b, p)
                return True

            b.keys.update(name, rotate_if_due)
            rotated += 1
            log.info("event=transit_auto_rotate key=%s", name)
        except StrongroomError as exc:
            log.warning("event=transit_auto_rotate_failed key=%s error=%s", name, exc.message)
    return rotated


def _due(b: TransitBackend, p: Policy) -> bool:
    if p.imported and not p.allow_imported_key_rotation:
        return False
    if p.auto_rotate_period == 0 or p.soft_deleted:
        return False
    latest = p.keys.get(p.latest_version)
    if latest is None:
        return False
    return b.now() > latest.time + timedelta(seconds=p.auto_rotate_period)
