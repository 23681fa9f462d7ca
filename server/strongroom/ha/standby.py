"""What a standby's worker does with a request it must not serve itself."""

from __future__ import annotations

import hmac
import json
import logging
import threading
from urllib.parse import urlencode

from strongroom.barrier.barrier import AESGCMBarrier
from strongroom.ha.cluster_tls import ClusterIdentity
from strongroom.ha.forwarding import FORWARDED_HEADER, Forwarder
from strongroom.ha.state import CLUSTER_TLS_PATH, HAStatus

log = logging.getLogger(__name__)
NO_FORWARDING_HEADER = "x-vault-no-request-forwarding"
# Set in the master before workers fork; marks requests relayed by our own cluster port.
NODE_SECRET: dict[str, str] = {"value": ""}


def forwarded_by_cluster(headers: dict[str, str]) -> bool:
    secret = NODE_SECRET["value"]
    marker = headers.get(FORWARDED_HEADER.lower(), "")
    return bool(secret) and hmac.compare_digest(marker.encode(), secret.encode())


class StandbyRouter:
    """Forward to the active node over mTLS, or redirect with 307."""

    def __init__(self, barrier: AESGCMBarrier, forwarding: bool = True) -> None:
        self._barrier = barrier
        self._forwarding = forwarding
        self._lock = threading.Lock()
        self._cached: tuple[str, str, Forwarder] | None = None

    def _forwarder(self, status: HAStatus) -> Forwarder | None:
        raw = self._barrier.get(CLUSTER_TLS_PATH)
        if raw is None or not status.leader_cluster_addr:
            return None
        doc = json.loads(raw)
        with self._lock:
            cached = self._cached
            if cached and cached[0] == status.leader_cluster_addr and cached[1] == doc["cert"]:
                return cached[2]
            forwarder = Forwarder(ClusterIdentity(doc["cert"].encode(), doc["key"].encode()),
                                  status.leader_cluster_addr)
            self._cached = (status.leader_cluster_addr, doc["cert"], forwarder)
            return forwarder

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
