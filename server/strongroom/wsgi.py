"""Assemble a node: storage, coordinator, core and the Falcon app.

``create_app(config)`` builds a complete single-process node (tests, dev
server). Under gunicorn with several workers, the coordinator lives in the
owner process and each worker builds its Core around a RemoteCoordinator (serve.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import falcon

from strongroom import registry
from strongroom.config import ServerConfig, dev_config
from strongroom.core.bootstrap import make_bootstrapper
from strongroom.core.core import Core
from strongroom.http.app import build_falcon_app
from strongroom.http.sys_routes import switched_off
from strongroom.node.coordinator import (
    Clock,
    HAFactory,
    LocalCoordinator,
    SealCoordinator,
    utcnow,
)
from strongroom.node.shared import SharedCounters
from strongroom.physical.base import Backend
from strongroom.physical.chain import StorageChain, build_chain, build_physical
from strongroom.seal.base import Seal
from strongroom.seal.factory import build_seals

__all__ = ["Node", "build_node", "build_physical", "create_app", "local_coordinator"]


@dataclass
class Node:
    config: ServerConfig
    physical: Backend  # the bottom of the chain: what is stored, as stored
    storage: StorageChain
    coordinator: SealCoordinator
    core: Core
    app: falcon.App[falcon.Request, falcon.Response]


def local_coordinator(
    config: ServerConfig,
    physical: Backend,
    clock: Clock = utcnow,
    dev: bool = False,
    counters: SharedCounters | None = None,
    ha_factory: HAFactory | None = None,
    seal: Seal | None = None,
    old_seal: Seal | None = None,
) -> LocalCoordinator:
    """The node's coordinator, with ``seal`` (default: the configured one, built by
    seal/factory.py; the server builds it before forking, see serve.py) and ``old_seal``,
    the disabled seal of a seal migration (default: the configured one)."""
    if seal is None:
        seal, old_seal = build_seals(config)
    return LocalCoordinator(
        physical,
        storage_type=config.storage.type,
        bootstrap=make_bootstrapper(clock, dev=dev),
        clock=clock,
        counters=counters,
        ha_factory=ha_factory,
        seal=seal,
        old_seal=old_seal,
    )


def build_node(
    config: ServerConfig,
    *,
    coordinator: SealCoordinator | None = None,
    storage: StorageChain | None = None,
    physical: Backend | None = None,
    clock: Clock = utcnow,
    dev: bool = False,
    counters: SharedCounters | None = None,
) -> Node:
    """A node's core and app; one process unless ``coordinator`` and ``storage`` (built
    around the node's shared ring) say otherwise. ``physical`` replaces the configured
    bottom layer of a chain built here (tests)."""
    storage = storage or build_chain(config, physical=physical)
    counters = counters or SharedCounters()
    coordinator = coordinator or local_coordinator(config, storage.top, clock, dev, counters)
    core = Core(storage, coordinator, counters, engines=registry.SECRETS_ENGINES,
                auth_methods=registry.AUTH_METHODS, audit_devices=registry.AUDIT_DEVICES,
                clock=clock, default_lease_ttl=config.default_lease_ttl,
                max_lease_ttl=config.max_lease_ttl)
    listener = config.listeners[0] if config.listeners else None
    max_size = listener.max_request_size if listener is not None else 32 << 20
    app = build_falcon_app(core, max_size, switched_off(listener))
    return Node(config, storage.physical, storage, coordinator, core, app)


def create_app(
    config: ServerConfig | None = None,
) -> falcon.App[falcon.Request, falcon.Response]:
    """A complete single-process node's WSGI app (inmem storage unless configured)."""
    return build_node(config or dev_config()).app
