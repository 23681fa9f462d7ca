"""What a standby's worker does with a request it must not serve itself."""

from __future__ import annotations

import hmac
import logging
import sys
import threading
import weakref
from urllib.parse import urlencode

from strongroom.barrier.barrier import AESGCMBarrier
from strongroom.barrier.secmem import wipe_immutable
from strongroom.errors import SealedError
from strongroom.ha.cluster_tls import ClusterIdentity, identity_from_json
from strongroom.ha.forwarding import FORWARDED_HEADER, Forwarder
from strongroom.ha.state import CLUSTER_TLS_PATH, HAStatus

log = logging.getLogger(__name__)
NO_FORWARDING_HEADER = "x-vault-no-request-forwarding"
# Set in the owner before it forks the arbiter; marks requests relayed by our own cluster port.
NODE_SECRET: dict[str, str] = {"value": ""}


def forwarded_by_cluster(headers: dict[str, str]) -> bool:
    secret = NODE_SECRET["value"]
    marker = headers.get(FORWARDED_HEADER.lower(), "")
    return bool(secret) and hmac.compare_digest(marker.encode(), secret.encode())


# Every router of this process, so a seal drops their forwarders (forget_forwarders).
_ROUTERS: weakref.WeakSet[StandbyRouter] = weakref.WeakSet()


def forget_forwarders() -> None:
    """Seal: drop every cached forwarder, and with it the cluster key in its SSL context."""
    for router in list(_ROUTERS):
        router.forget()


def _read_identity(raw: bytes) -> ClusterIdentity:
    """Parse the stored identity; ``raw`` (a freshly decrypted value) is zeroed after."""
    try:
        return identity_from_json(raw)
    finally:
        # Three references: the caller's, ours, getrefcount's. More: someone keeps it.
        if sys.getrefcount(raw) <= 3:
            wipe_immutable(raw)


class StandbyRouter:
    """Forward to the active node over mTLS, or redirect with 307."""

    def __init__(self, barrier: AESGCMBarrier, forwarding: bool = True) -> None:
        self._barrier = barrier
        self._forwarding = forwarding
        self._lock = threading.Lock()
        self._cached: tuple[str, bytes, Forwarder] | None = None
        _ROUTERS.add(self)

    def forget(self) -> None:
        with self._lock:
            self._cached = None

    def _forwarder(self, status: HAStatus) -> Forwarder | None:
        raw = self._barrier.get(CLUSTER_TLS_PATH)
        if raw is None or not status.leader_cluster_addr:
            return None
        try:
            identity = _read_identity(raw)
        except ValueError:
            log.warning("event=cluster_identity_unreadable")
            return None
        finally:
            del raw
        try:
            with self._lock:
                cached = self._cached
                if (cached and cached[0] == status.leader_cluster_addr
                        and cached[1] == identity.cert_pem):
                    return cached[2]
                forwarder = Forwarder(identity, status.leader_cluster_addr)
                if self._barrier.sealed:
                    # A seal (and its forget()) landed while we read: keep nothing.
                    raise SealedError()
                self._cached = (status.leader_cluster_addr, identity.cert_pem, forwarder)
                return forwarder
        finally:
            identity.wipe()  # the forwarder's SSL context holds its own copy

    def redirect_location(self, status: HAStatus, path: str, params: dict[str, str]) -> str:
        query = ("?" + urlencode(params)) if params else ""
        return f"{status.leader_api_addr.rstrip('/')}/v1/{path}{query}"

    def wants_redirect(self, headers: dict[str, str]) -> bool:
        return not self._forwarding or NO_FORWARDING_HEADER in headers

    def forward(self, status: HAStatus, method: str, path: str, params: dict[str, str],
                headers: dict[str, str], body: bytes) -> tuple[int, bytes, dict[str, str]] | None:
        forwarder = self._forwarder(status)
        if forwarder is None:
            return None
        query = ("?" + urlencode(params)) if params else ""
        return forwarder.forward(method, f"/v1/{path}{query}", headers, body)
