"""Assemble HA for a node from its configuration (Consul storage or ha_storage)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from strongroom.config import ServerConfig, parse_duration
from strongroom.ha.consul_lock import ConsulLock
from strongroom.ha.forwarding import ClusterListener
from strongroom.ha.manager import HAManager
from strongroom.ha.state import HAStatus
from strongroom.physical.base import Backend, Fenced
from strongroom.physical.chain import LOCK_KEY, ha_storage
from strongroom.physical.consul import ConsulBackend

__all__ = ["LOCK_KEY", "addresses", "ha_factory", "ha_storage"]


def _local_api(config: ServerConfig) -> str:
    """Where this node's owner reaches its own API listener."""
    listener = config.listeners[0]
    host = listener.host if listener.host not in ("0.0.0.0", "::", "") else "127.0.0.1"  # noqa: S104
    return f"{host}:{listener.port}"


def _scheme(config: ServerConfig) -> str:
    return "http" if config.listeners and config.listeners[0].tls_disable else "https"


def addresses(config: ServerConfig) -> tuple[str, str]:
    """api_addr and cluster_addr, defaulted from the first listener as Vault does."""
    listener = config.listeners[0]
    api = config.api_addr or f"{_scheme(config)}://{_local_api(config)}"
    if config.cluster_addr:
        cluster = config.cluster_addr
    elif listener.cluster_address:
        cluster = "https://" + listener.cluster_address
    else:
        cluster = f"https://{urlsplit(api).hostname}:{listener.port + 1}"
    return api, cluster


def ha_factory(config: ServerConfig, fence: Fenced | None,
               node_secret: str) -> Callable[[Backend, Callable[[HAStatus], None]], HAManager]:
    storage = ha_storage(config)
    assert storage is not None
    options = dict(storage.options)
    api_addr, cluster_addr = addresses(config)
    listener = config.listeners[0]
    api_url = urlsplit(api_addr)
    node_id = str(uuid.uuid4())
    registration = options.get("disable_registration", "false").lower() not in ("true", "1")
    tags = tuple(t for t in options.get("service_tags", "").split(",") if t)

    backend = ConsulBackend(storage.options)

    def build(barrier: Backend, publish: Callable[[HAStatus], None]) -> HAManager:
        lock = ConsulLock(
            backend.client, backend.absolute(LOCK_KEY), node_id,
            session_ttl=parse_duration(options.get("session_ttl", "15s")),
            service=options.get("service", "strongroom") if registration else None,
            service_address=api_url.hostname or "", service_port=api_url.port or 0,
            service_tags=tags,
        )
        cluster = ClusterListener(cluster_addr, _local_api(config), not listener.tls_disable,
                                  node_secret, lambda: manager.status.active)
        manager = HAManager(lock, barrier, fence, api_addr, cluster_addr, publish, cluster)
        manager.lock_wait = max(1, parse_duration(options.get("lock_wait_time", "15s")))
        return manager

    return build

