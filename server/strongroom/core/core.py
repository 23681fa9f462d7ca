"""Core.handle: sealed? -> token -> policy -> route to the mount that owns the path.

One Core per worker process. Node-level seal state comes from the coordinator;
the Core applies each new snapshot (keyring, sealed flag) before serving, keyed
by a generation counter so the check on the hot path is one memory read.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime

from strongroom.barrier.barrier import AESGCMBarrier
from strongroom.barrier.view import StorageView
from strongroom.core.bootstrap import TOKEN_STORE_PREFIX
from strongroom.core.mounts import (
    EngineFactory,
    LogicalBackend,
    MountContext,
    Router,
    load_mount_table,
)
from strongroom.core.request import Request, Response
from strongroom.core.system import SystemBackend
from strongroom.core.token_backend import TokenBackend
from strongroom.core.tokens import TokenEntry, TokenStore
from strongroom.errors import (
    NoRouteError,
    PermissionDeniedError,
    SealedError,
    no_route_message,
)
from strongroom.node.coordinator import NodeSnapshot, SealCoordinator, utcnow
from strongroom.physical.base import Backend

# Paths any valid token may use before real policies exist (Vault's `default` policy).
_DEFAULT_POLICY_PATHS = ("auth/token/lookup-self",)


class Core:
    def __init__(
        self,
        physical: Backend,
        coordinator: SealCoordinator,
        engines: dict[str, EngineFactory] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.physical = physical
        self.coordinator = coordinator
        self.clock = clock
        self.barrier = AESGCMBarrier(physical, on_unknown_term=self._force_sync)
        self.tokens = TokenStore(StorageView(self.barrier, TOKEN_STORE_PREFIX))
        self.router = Router()
        self._engines = engines or {}
        self._system = SystemBackend(self)
        self._token_backend = TokenBackend(self)
        self._sync_lock = threading.Lock()
        self._applied = -1
        self.snapshot = NodeSnapshot(0, False, True, None)

    # -- seal state ---------------------------------------------------------

    def sync(self) -> NodeSnapshot:
        """Apply the coordinator's state if it changed since we last looked."""
        if self.coordinator.generation() != self._applied:
            self._force_sync()
        return self.snapshot

    def _force_sync(self) -> None:
        with self._sync_lock:
            snap = self.coordinator.snapshot()
            if snap.keyring is None:
                self.barrier.seal()
                self.router.replace([])
            else:
                self.barrier.install(snap.keyring)
                self._load_mounts()
            self.snapshot = snap
            self._applied = snap.generation

    def _load_mounts(self) -> None:
        mounts: list[tuple[object, LogicalBackend]] = []
        for entry in load_mount_table(self.barrier):
            factory = self._engines.get(entry.type)
            if factory is None:
                continue  # an engine type this build does not ship; its data stays intact
            view = StorageView(self.barrier, f"logical/{entry.uuid}/")
            mounts.append((entry, factory(MountContext(view, entry, self.clock))))
        self.router.replace(mounts)  # type: ignore[arg-type]

    # -- requests -------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        if not req.request_id:
            req.request_id = str(uuid.uuid4())
        snap = self.sync()
        if snap.sealed:
            raise SealedError()
        entry = self._authenticate(req)
        self._authorize(req, entry)
        try:
            return self._route(req)
        except NoRouteError:
            raise NoRouteError(no_route_message(req.path)) from None

    def _authenticate(self, req: Request) -> TokenEntry:
        entry = self.tokens.lookup(req.token) if req.token else None
        if entry is None:
            raise PermissionDeniedError()
        return entry

    def _authorize(self, req: Request, entry: TokenEntry) -> None:
        if "root" in entry.policies:
            return
        if req.path.rstrip("/") in _DEFAULT_POLICY_PATHS:
            return
        raise PermissionDeniedError()

    def _route(self, req: Request) -> Response:
        path = req.path
        resp: Response | None
        if path.startswith("sys/"):
            resp = self._system.handle(req, path[len("sys/"):])
        elif path.startswith("auth/token/"):
            resp = self._token_backend.handle(req, path[len("auth/token/"):])
        else:
            match = self.router.match(path)
            if match is None:
                raise NoRouteError(no_route_message(path))
            entry, backend, rel = match
            resp = backend.handle(req, rel)
            if resp is not None:
                resp.mount_type = entry.type
        return resp if resp is not None else Response()
