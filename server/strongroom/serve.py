"""Run a node under gunicorn: the coordinator in the master, the API in the workers.

With shared storage (file, consul) the master owns the node's seal state
(node/coordinator.py), serves it on a private Unix socket and publishes a
generation counter in shared memory; every worker builds its Core around a
RemoteCoordinator. A re-forked worker syncs on its first request, so it comes
up in the node's current seal state. With inmem storage there is one worker and
the whole node is built in the master before the fork (preload).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import ssl
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from strongroom.config import ServerConfig
from strongroom.ha.setup import fence_for, ha_factory, ha_storage
from strongroom.ha.standby import NODE_SECRET
from strongroom.http.app import build_asgi_app
from strongroom.node import forksafe, locks
from strongroom.node.coordinator import LocalCoordinator
from strongroom.node.rpc import CoordinatorServer, RemoteCoordinator
from strongroom.node.shared import SharedCounters
from strongroom.wsgi import Node, build_node, build_physical, local_coordinator

log = logging.getLogger(__name__)

# Vault clients keep connections open; gthread keeps them alive, sync workers would not.
# STRONGROOM_HTTP_WORKER=uvicorn serves the ASGI app instead (measured in bench/README.md).
WORKER_CLASSES = {
    "gthread": "gthread",
    "uvicorn": "strongroom.http.uvicorn_worker.StrongroomUvicornWorker",
}
THREADS_PER_WORKER = 8


def worker_kind() -> str:
    kind = os.environ.get("STRONGROOM_HTTP_WORKER", "gthread")
    if kind not in WORKER_CLASSES:
        raise ValueError(f"STRONGROOM_HTTP_WORKER must be one of {sorted(WORKER_CLASSES)}")
    return kind
_TLS_VERSIONS = {"tls12": ssl.TLSVersion.TLSv1_2, "tls13": ssl.TLSVersion.TLSv1_3}


def tls_context_hook(config: ServerConfig) -> Callable[[Any, Callable[[], ssl.SSLContext]], Any]:
    listener = config.listeners[0]

    def ssl_context(_conf: Any, default_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        context = default_factory()
        context.minimum_version = _TLS_VERSIONS[listener.tls_min_version]
        if listener.tls_max_version:
            context.maximum_version = _TLS_VERSIONS[listener.tls_max_version]
        return context

    return ssl_context


class StrongroomServer(BaseApplication):  # type: ignore[misc]
    """A gunicorn application whose configuration comes from the HCL file, not argv."""

    def __init__(
        self,
        config: ServerConfig,
        prepare_node: Callable[[Node], None] | None = None,
        dev: bool = False,
    ) -> None:
        self.config_obj = config
        self._dev = dev
        self._prepare_node = prepare_node
        self._shared = config.storage.type != "inmem"
        self._node: Node | None = None
        self._server: CoordinatorServer | None = None
        self._socket_dir = ""
        self._coordinator: LocalCoordinator | None = None
        self._counters = SharedCounters()
        self._kind = worker_kind()
        super().__init__()

    # -- gunicorn hooks ---------------------------------------------------

    def load_config(self) -> None:
        cfg = self.config_obj
        listeners = cfg.listeners
        tls = [listener for listener in listeners if not listener.tls_disable]
        settings: dict[str, Any] = {
            "bind": [listener.address for listener in listeners],
            "workers": cfg.workers,
            "worker_class": WORKER_CLASSES[self._kind],
            "threads": THREADS_PER_WORKER,
            "keepalive": 75,
            "timeout": 60,
            "graceful_timeout": 10,
            "preload_app": not self._shared,
            "control_socket_disable": True,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": {"trace": "debug", "warn": "warning"}.get(cfg.log_level, cfg.log_level),
            "proc_name": "strongroom",
            "limit_request_field_size": 16384,
            # Trust no client's forwarding headers (SCRIPT_NAME, X-Forwarded-Proto...), as
            # Vault by default: gunicorn would trust 127.0.0.1, where the cluster port's
            # relayed requests come from with the client's headers.
            "forwarded_allow_ips": "",
            "on_starting": self._on_starting,
            "post_fork": self._post_fork,
            "on_exit": self._on_exit,
        }
        if cfg.pid_file:
            settings["pidfile"] = cfg.pid_file
        if tls:
            first = tls[0]
            if len(tls) != len(listeners) or any(
                (t.tls_cert_file, t.tls_key_file, t.tls_min_version)
                != (first.tls_cert_file, first.tls_key_file, first.tls_min_version)
                for t in tls
            ):
                raise ValueError("all listeners must share one TLS configuration")
            settings["certfile"] = first.tls_cert_file
            settings["keyfile"] = first.tls_key_file
            settings["ssl_context"] = tls_context_hook(cfg)
        for key, value in settings.items():
            self.cfg.set(key, value)

    def _on_starting(self, _arbiter: Any) -> None:
        # Before the master starts any thread: a worker forked while one of them
        # imports a module would hang on that module for good (node/forksafe.py).
        forksafe.install()
        if not self._shared:
            return
        config = self.config_obj
        physical = build_physical(config.storage)
        factory = None
        if ha_storage(config) is not None:
            # Workers inherit this secret: it marks requests our own cluster port relayed.
            NODE_SECRET["value"] = secrets.token_hex(16)
            physical = fence_for(config, physical)
            factory = ha_factory(config, physical, NODE_SECRET["value"])
        coordinator = local_coordinator(config, physical, counters=self._counters,
                                        ha_factory=factory)
        self._coordinator = coordinator
        self._socket_dir = tempfile.mkdtemp(prefix="strongroom-")
        os.mkdir(os.path.join(self._socket_dir, "locks"), 0o700)
        locks.configure(os.path.join(self._socket_dir, "locks"))
        self._server = CoordinatorServer(coordinator, os.path.join(self._socket_dir, "coord.sock"))
        self._server.start()

    def _post_fork(self, _arbiter: Any, _worker: Any) -> None:
        if self._server is not None:
            self._server.close_in_child()

    def release_leadership(self) -> None:
        """First thing on SIGTERM/SIGINT: a standby can take over while we drain."""
        if self._coordinator is not None:
            self._coordinator.shutdown()

    def run(self) -> None:
        StrongroomArbiter(self).run()

    def _on_exit(self, _arbiter: Any) -> None:
        if self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def load(self) -> Any:
        if not self._shared:
            # Built once in the master (preload): the single worker inherits it.
            if self._node is None:
                self._node = build_node(self.config_obj, dev=self._dev)
                if self._prepare_node is not None:
                    self._prepare_node(self._node)
            return self._app_for(self._node)
        assert self._server is not None, "on_starting runs before workers load the app"
        remote = RemoteCoordinator(self._server.socket_path, self._counters)
        physical = fence_for(self.config_obj, build_physical(self.config_obj.storage))
        return self._app_for(build_node(self.config_obj, coordinator=remote, physical=physical,
                                        counters=self._counters))

    def _app_for(self, node: Node) -> Any:
        if self._kind == "uvicorn":
            return build_asgi_app(node.core, self._max_request_size())
        return node.app

    def _max_request_size(self) -> int:
        return self.config_obj.listeners[0].max_request_size


class StrongroomArbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's arbiter, releasing the HA lock before the graceful shutdown starts."""

    def handle_term(self) -> None:
        self.app.release_leadership()
        super().handle_term()

    def handle_int(self) -> None:
        self.app.release_leadership()
        super().handle_int()


def serve(
    config: ServerConfig, prepare_node: Callable[[Node], None] | None = None, dev: bool = False
) -> int:
    """Run gunicorn in the foreground until it is told to stop."""
    # Strongroom's own events (key=value, never a secret) go to stderr beside gunicorn's.
    level = {"trace": "DEBUG", "warn": "WARNING"}.get(config.log_level, config.log_level.upper())
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s %(message)s")
    try:
        StrongroomServer(config, prepare_node, dev=dev).run()
    except SystemExit as exc:
        return int(exc.code or 0)
    sys.stdout.flush()
    return 0
