"""What the coordinator asks of a seal beyond the protocol: Vault 1.16's
``sys/seal-backend-status`` body and the wraps a newly configured partition lacks.

Kept here so node/coordinator.py only gains thin calls.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from strongroom.errors import StrongroomError
from strongroom.physical.base import Backend
from strongroom.seal.base import SEALED_ROOT_KEY_PATH, AutoSeal, Seal, SealedRootKey

log = logging.getLogger(__name__)


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def backend_status(seal: Seal) -> dict[str, Any]:
    """``GET sys/seal-backend-status``: ``healthy``, ``unhealthy_since`` (only when
    unhealthy: the earliest backend's), ``backends[]`` (``name``, ``healthy``,
    ``unhealthy_since`` when unhealthy). A Shamir seal is one healthy "shamir" backend."""
    health = seal.health()
    backends: list[dict[str, Any]] = []
    for backend in health.backends or ():
        doc: dict[str, Any] = {"name": backend.name, "healthy": backend.healthy}
        if not backend.healthy and backend.unhealthy_since is not None:
            doc["unhealthy_since"] = _rfc3339(backend.unhealthy_since)
        backends.append(doc)
    if not backends:
        backends.append({"name": seal.type, "healthy": not health.degraded})
    healthy = all(b["healthy"] for b in backends)
    body: dict[str, Any] = {"healthy": healthy}
    if not healthy:
        since = sorted(b["unhealthy_since"] for b in backends if "unhealthy_since" in b)
        if since:
            body["unhealthy_since"] = since[0]
    body["backends"] = backends
    return body


def complete_wraps(seal: AutoSeal, physical: Backend, stored: SealedRootKey,
                   root_key: bytearray, path: str = SEALED_ROOT_KEY_PATH) -> bool:
    """Store wraps for partitions that have none (configured after init). The stored
    entry is read again first and only ever extended, so a node that reaches fewer
    partitions than another never removes the other's wraps. A failure is logged and
    left for the next unseal: the node is unsealed either way. ``path``: the entry
    (the recovery key's too). True if wraps were added."""
    try:
        raw = physical.get(path)
        current = SealedRootKey.from_json(raw, path) if raw is not None else stored
        completed = seal.complete(current, root_key)
        if completed is not None:
            physical.put(path, completed.to_json())
            log.info("event=seal_wraps_completed entry=%s wraps=%d", path,
                     len(completed.wrapped))
            return True
    except StrongroomError as exc:
        log.warning("event=seal_wraps_not_completed entry=%s error=%s", path,
                    type(exc).__name__)
    return False
