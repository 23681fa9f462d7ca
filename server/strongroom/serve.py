"""Run a node: the owner process (keys, HA, background work) and gunicorn under it.

The process started (systemd's MainPID) owns the node's seal state
(node/coordinator.py), serves it on a private Unix socket and publishes a
generation counter in shared memory. Before it starts any thread it forks the
gunicorn arbiter, which forks the workers and runs nothing else
(node/supervisor.py); every worker builds its Core around a RemoteCoordinator.
A re-forked worker syncs on its first request, so it comes up in the node's
current seal state. Storage belongs to the node too: ``inmem`` is a tmpfs
directory the owner owns (dev mode included), so a worker's death loses nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import secrets
import shutil
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from strongroom.config import ConfigError, ListenerConfig, ServerConfig
from strongroom.core.core import Core
from strongroom.ha.drain import GATE, ActiveGate
from strongroom.ha.setup import ha_factory, ha_storage
from strongroom.ha.standby import NODE_SECRET
from strongroom.http.app import build_asgi_app
from strongroom.http.protocol import ConnectionLimits
from strongroom.http.sys_routes import switched_off
from strongroom.http.tls_reload import ReloadingContext
from strongroom.node import encryptions, locks, memlock, runtime
from strongroom.node.auto_unseal import AutoUnsealer
from strongroom.node.background import BackgroundWork, owner_background
from strongroom.node.connections import ConnectionCounts
from strongroom.node.coordinator import LocalCoordinator
from strongroom.node.rpc import CoordinatorServer, RemoteCoordinator, listen_unix
from strongroom.node.shared import ChangeRing, Op, SharedCounters
from strongroom.node.supervisor import Supervisor, set_parent_death_signal
from strongroom.physical.chain import StorageChain, build_chain
from strongroom.seal.base import Seal
from strongroom.seal.factory import build_seals
from strongroom.wsgi import Node, build_node, local_coordinator

log = logging.getLogger(__name__)

# The default serves the ASGI app on uvicorn's h11 protocol inside gunicorn workers:
# slow clients cost a socket, not a thread, and every listener limit applies
# (http/protocol.py). gthread (WSGI, 8 threads a worker) stays selectable with
# STRONGROOM_HTTP_WORKER=gthread for comparison only: a few slow clients starve it
# (bench/README.md, "HTTP server").
WORKER_CLASSES = {
    "uvicorn": "strongroom.http.uvicorn_worker.StrongroomUvicornWorker",
    "gthread": "gthread",
}
THREADS_PER_WORKER = 8


def worker_kind() -> str:
    kind = os.environ.get("STRONGROOM_HTTP_WORKER", "uvicorn")
    if kind not in WORKER_CLASSES:
        raise ValueError(f"STRONGROOM_HTTP_WORKER must be one of {sorted(WORKER_CLASSES)}")
    return kind


_TLS_VERSIONS = {"tls12": ssl.TLSVersion.TLSv1_2, "tls13": ssl.TLSVersion.TLSv1_3}


def tls_context_hook(config: ServerConfig) -> Callable[[Any, Callable[[], ssl.SSLContext]], Any]:
    """gunicorn's ``ssl_context`` hook (gthread): its default context, our settings."""
    listener = config.listeners[0]

    def ssl_context(_conf: Any, default_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return _apply_tls_settings(default_factory(), listener)

    return ssl_context


def tls_context(listener: ListenerConfig) -> ssl.SSLContext:
    """A server context for ``listener``, loaded from its certificate and key files now."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    assert listener.tls_cert_file is not None, "config checks TLS listeners have files"
    context.load_cert_chain(listener.tls_cert_file, listener.tls_key_file)
    return _apply_tls_settings(context, listener)


def _apply_tls_settings(context: ssl.SSLContext, listener: ListenerConfig) -> ssl.SSLContext:
    context.minimum_version = _TLS_VERSIONS[listener.tls_min_version]
    if listener.tls_max_version:
        context.maximum_version = _TLS_VERSIONS[listener.tls_max_version]
    if listener.tls_client_ca_file:
        # Ask for a client certificate, verified against the file (the cert auth method
        # then decides which of them may log in). Python's ssl cannot ask for one without
        # verifying it, as Go's RequestClientCert does: one the file does not vouch for
        # fails the handshake.
        context.load_verify_locations(cafile=listener.tls_client_ca_file)
        context.verify_mode = ssl.CERT_OPTIONAL
    if listener.tls_require_and_verify_client_cert:
        if not listener.tls_client_ca_file:
            # As Go with no ClientCAs: the system's roots.
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        # No valid client certificate, no connection (refused at the handshake).
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class _RequestRedactor(logging.Filter):
    """gunicorn logs a malformed request line or header verbatim, and a failed request's
    URI: either may carry a token (``?token=``, a header). Keep the event, drop the text."""

    _PREFIXES = ("Invalid request from ip=", "Error handling request")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for prefix in self._PREFIXES:
            if message.startswith(prefix):
                head = message.partition(": ")[0] if prefix[0] == "I" else prefix
                record.msg, record.args = head + " (request not logged)", ()
        return True


class StrongroomServer(BaseApplication):  # type: ignore[misc]
    """A gunicorn application whose configuration comes from the HCL file, not argv."""

    def __init__(
        self,
        config: ServerConfig,
        prepare: Callable[[LocalCoordinator], None] | None = None,
        dev: bool = False,
        seal: Seal | None = None,
        old_seal: Seal | None = None,
    ) -> None:
        self.config_obj = config
        # Built before the fork (it reads the PIN); PKCS#11 opens only in the owner, later.
        self._seal = seal
        self._old_seal = old_seal  # the disabled seal of a seal migration
        self._auto_unsealer: AutoUnsealer | None = None
        self._dev = dev
        self._prepare = prepare
        self._server: CoordinatorServer | None = None
        self._listening: socket.socket | None = None
        self._background: BackgroundWork | None = None
        self._ready: Callable[[], None] = lambda: None
        self._socket_dir = ""
        self._socket_path = ""
        self._inmem_dir = ""
        self._coordinator: LocalCoordinator | None = None
        self._counters = SharedCounters()
        self._changes = ChangeRing()  # the keys every process writes, for the others
        # Room for every worker plus those being re-forked while the dead ones are reaped.
        self._connections = ConnectionCounts(slots=2 * max(1, config.workers) + 8)
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
            "keepalive": self.config_obj.listeners[0].http_idle_timeout if listeners else 75,
            "timeout": 60,
            "graceful_timeout": 10,
            "preload_app": False,
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
            "when_ready": lambda _arbiter: self._ready(),
            "post_fork": self._post_fork,
            "child_exit": self._child_exit,
        }
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
        logging.getLogger("gunicorn.error").addFilter(_RequestRedactor())

    def listener_settings(self) -> dict[str, Any]:
        """What a worker needs to serve the listeners: limits, the node's connection counts
        and TLS."""
        listener = self.config_obj.listeners[0]
        limits = ConnectionLimits(
            read_header_timeout=listener.http_read_header_timeout,
            read_timeout=listener.http_read_timeout,
            write_timeout=listener.http_write_timeout,
            idle_timeout=listener.http_idle_timeout,
            max_connections=listener.max_connections,
        )
        settings: dict[str, Any] = {"limits": limits, "tls": None, "counts": self._connections}
        if not listener.tls_disable:
            files = [f for f in (listener.tls_cert_file, listener.tls_key_file,
                                 listener.tls_client_ca_file) if f]
            settings["tls"] = ReloadingContext(lambda: tls_context(listener), files)
        return settings

    # -- the owner, before the fork (one thread): what the arbiter and workers inherit --

    def prepare_node(self) -> None:
        """Runtime directories, inmem storage, shared memory and the bound coordinator
        socket, made before the arbiter is forked; no key exists yet."""
        runtime.remove_stale_dirs()
        config = self.config_obj
        if config.pid_file:
            with open(config.pid_file, "w", encoding="ascii") as pid_file:
                pid_file.write(f"{os.getpid()}\n")
        if config.storage.type == "inmem":
            self._inmem_dir = runtime.make_dir("inmem")
        storage = self._storage()
        if storage.recover is not None:
            storage.recover()  # temp files left by a crash mid-write; no worker runs yet
        if ha_storage(config) is not None:
            # Workers inherit this secret: it marks requests our own cluster port relayed.
            NODE_SECRET["value"] = secrets.token_hex(16)
            GATE["gate"] = ActiveGate(slots=2 * max(1, config.workers) + 8)
        self._socket_dir = runtime.make_dir("run")
        os.mkdir(os.path.join(self._socket_dir, "locks"), 0o700)
        locks.configure(os.path.join(self._socket_dir, "locks"))
        self._socket_path = os.path.join(self._socket_dir, "coord.sock")
        # Bound and listening now: a worker that connects before the owner's accept
        # thread runs waits in the backlog instead of finding no socket.
        self._listening = listen_unix(self._socket_path)

    # -- the arbiter (node/supervisor.py forks it) -----------------------------------

    def close_in_arbiter(self) -> None:
        if self._listening is not None:
            self._listening.close()  # workers must not inherit the coordinator's socket

    def run_arbiter(self, ready: Callable[[], None]) -> int:
        """gunicorn, with nothing added to its one thread; ``ready`` once it listens."""
        self._ready = ready
        try:
            Arbiter(self).run()
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 1
        except RuntimeError as exc:
            print(f"\nError: {exc}\n", file=sys.stderr)
            return 1
        return 0

    def _post_fork(self, arbiter: Any, _worker: Any) -> None:
        # A worker whose arbiter died must not serve on: it exits (gracefully).
        set_parent_death_signal(signal.SIGTERM, arbiter.pid)
        # Memory locks are not inherited across fork; a failure stops the server (boot error).
        memlock.lock_worker(self.config_obj.disable_mlock, self._dev)

    def _child_exit(self, _arbiter: Any, worker: Any) -> None:
        # A worker killed between a storage write and its ring record leaves the other
        # processes unaware of that write (their caches may hold the old value): every
        # process forgets everything it cached. Worker exits are rare; this is cheap.
        self._changes.append([(Op.RESET, "")])
        self._connections.release(worker.pid)
        gate = GATE["gate"]
        if gate is not None:
            gate.release(worker.pid)

    # -- the owner, after the fork ------------------------------------------------------

    def start_owner(self, arbiter_pid: int) -> None:
        """The coordinator (keys), HA, the coordinator socket's accept thread and the
        background work: threads, which the owner never forks with."""
        config = self.config_obj
        storage = self._storage()
        factory = None
        if ha_storage(config) is not None:
            factory = ha_factory(config, storage.fencing, NODE_SECRET["value"])
        coordinator = local_coordinator(config, storage.top, counters=self._counters,
                                        ha_factory=factory, dev=self._dev, seal=self._seal,
                                        old_seal=self._old_seal)
        self._coordinator = coordinator
        assert self._listening is not None, "prepare_node runs before the fork"
        # Only the arbiter's children (the workers) may connect.
        self._server = CoordinatorServer(coordinator, self._socket_path,
                                         listening=self._listening, workers_parent=arbiter_pid)
        self._server.start()
        if self._prepare is not None:
            self._prepare(coordinator)
        if self._seal is not None and self._seal.auto_unseal:
            # Unseals now (no operator), after init, and again while an HSM is away.
            self._auto_unsealer = AutoUnsealer(coordinator)
            self._auto_unsealer.start()
        self._background = owner_background(coordinator, lambda: self._owner_core(coordinator))
        # The node-wide encryption count: persisted, and the key rotated past Vault's limit.
        self._background.every("checkpoint-encryptions", encryptions.CHECK_INTERVAL,
                               coordinator.checkpoint_encryptions)
        self._background.start()

    def _owner_core(self, coordinator: LocalCoordinator) -> Core:
        """The Core the owner's background jobs run on (engines loaded, as in a worker).
        Its own storage stack: it sets its fence's session from the coordinator's
        snapshots, as a worker's Core does; the HA manager owns the other one."""
        return build_node(self.config_obj, coordinator=coordinator, storage=self._storage(),
                          counters=self._counters).core

    def release_leadership(self) -> None:
        """First thing on SIGTERM/SIGINT: a standby can take over while we drain."""
        if self._coordinator is not None:
            self._coordinator.shutdown()

    def stop_owner(self) -> None:
        """Last thing: end background work and HA, close the socket, remove directories."""
        if self._background is not None:
            self._background.stop()
        if self._auto_unsealer is not None:
            self._auto_unsealer.stop()
        if self._coordinator is not None:
            self._coordinator.close()
        if self._server is not None:
            self._server.close()
        elif self._listening is not None:
            self._listening.close()
        for directory in (self._socket_dir, self._inmem_dir):
            if directory:
                shutil.rmtree(directory, ignore_errors=True)
        pid_file = self.config_obj.pid_file
        if pid_file:
            with contextlib.suppress(OSError):
                os.unlink(pid_file)

    def _storage(self) -> StorageChain:
        """This process's storage chain (physical/chain.py), around the node's change ring.
        ``inmem`` lives on a private tmpfs directory owned by the node's owner, not in a
        worker's heap: a worker's death loses nothing, and every worker sees the same
        entries (Vault's inmem is one process; ours is several)."""
        return build_chain(self.config_obj, self._changes, inmem_dir=self._inmem_dir or None)

    def load(self) -> Any:
        assert self._socket_path, "prepare_node runs before workers load the app"
        remote = RemoteCoordinator(self._socket_path, self._counters)
        return self._app_for(build_node(self.config_obj, coordinator=remote,
                                        storage=self._storage(), counters=self._counters))

    def _app_for(self, node: Node) -> Any:
        if self._kind == "uvicorn":
            return build_asgi_app(node.core, self._max_request_size(), self._core_threads(),
                                  switched_off(self.config_obj.listeners[0]))
        return node.app

    def _core_threads(self) -> int:
        """Threads for the core in each worker: 0 (on the loop) unless a call can wait on
        another host (Consul storage; a standby forwarding to the active node)."""
        override = os.environ.get("STRONGROOM_CORE_THREADS")
        if override is not None:
            return int(override)
        network = self.config_obj.storage.type == "consul" or self.config_obj.ha_storage
        return THREADS_PER_WORKER if network else 0

    def _max_request_size(self) -> int:
        return self.config_obj.listeners[0].max_request_size


def _raise_open_files_limit() -> None:
    """Every connection is a descriptor: allow as many as the hard limit does (as Go does)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            log.warning("cannot raise the open files limit soft=%d hard=%d", soft, hard)


def serve(
    config: ServerConfig, prepare: Callable[[LocalCoordinator], None] | None = None,
    dev: bool = False,
) -> int:
    """Run the node in the foreground (owner and gunicorn) until it is told to stop."""
    # Strongroom's own events (key=value, never a secret) go to stderr beside gunicorn's.
    level = {"trace": "DEBUG", "warn": "WARNING"}.get(config.log_level, config.log_level.upper())
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s %(message)s")
    _raise_open_files_limit()
    try:
        # Before anything that could hold a key exists in this process (disable_mlock).
        memlock.lock_owner(config.disable_mlock, dev)
    except memlock.MemoryLockError as exc:
        print(f"Error initializing core: {exc}", file=sys.stderr)
        return 1
    try:
        # The PIN is read here, and its environment variables removed before any fork.
        seal, disabled = build_seals(config, scrub=True)
    except ConfigError as exc:
        print(f"Error loading configuration: {exc}", file=sys.stderr)
        return 1
    try:
        server = StrongroomServer(config, prepare, dev=dev, seal=seal, old_seal=disabled)
        try:
            server.prepare_node()
        except BaseException:
            server.stop_owner()
            raise
        return Supervisor(server, float(server.cfg.graceful_timeout)).run()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.stdout.flush()
