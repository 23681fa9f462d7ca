"""The coordinator, served to worker processes over a Unix socket.

Only processes of the same user whose parent is the gunicorn arbiter (the workers)
may connect: the peer's credentials are checked with SO_PEERCRED. Messages are
length-prefixed JSON (node/wire.py). Key material crosses this socket only as the
keyring sent to workers; the root key never leaves the coordinator.

The operations a worker may call are one allow-list (``OPERATIONS``): a
coordinator method name and the arguments it takes. Two are special: ``snapshot``
(its keys travel as raw bytes after the JSON, never inside it) and
``encryption_counter`` (the node's shared count, sent as a file descriptor).
Errors keep their type across the socket: a ``BadRequestError`` raised in the
owner is a ``BadRequestError`` in the worker (``ERROR_TYPES``).
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import threading
import weakref
from collections.abc import Callable
from typing import Any

from strongroom import errors
from strongroom.barrier.counter import EncryptionCounter
from strongroom.barrier.keyring import Keyring
from strongroom.barrier.secmem import wipe
from strongroom.node.coordinator import LocalCoordinator, NodeSnapshot
from strongroom.node.shared import SharedCounters, Slot
from strongroom.node.wire import (
    _FD_MARK,
    _LEN,
    _MAX_MESSAGE,
    ENCRYPTION_COUNTER,
    OPERATIONS,
    SNAPSHOT,
    WATCH,
    _frame,
    _recv,
    _send,
    _wipe_share_texts,
    call_operation,
    error_from_wire,
    error_to_wire,
    snapshot_from_wire,
    snapshot_to_wire,
)

__all__ = ["_LEN", "_MAX_MESSAGE", "_frame", "CoordinatorServer", "RemoteCoordinator"]

log = logging.getLogger(__name__)
_PEERCRED = struct.Struct("3i")
# An idle watcher's server thread checks this often whether its worker is still there.
_WATCH_PEER_CHECK = 30.0


def _parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        # The command name may contain spaces; fields resume after its ')'.
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def listen_unix(socket_path: str) -> socket.socket:
    """A Unix socket bound at ``socket_path`` (owner-only, 0600) and listening."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(socket_path)
    finally:
        os.umask(old_umask)
    sock.listen(64)
    sock.set_inheritable(False)
    return sock


class CoordinatorServer:
    """Serves a LocalCoordinator on a Unix socket from a daemon thread.

    Only processes of this user whose parent is ``workers_parent`` may talk to it:
    on a node, the gunicorn arbiter, whose children are the workers (by default this
    process, for a server whose clients are its own children). ``listening`` is a
    socket bound earlier (before the owner forked the arbiter, see serve.py).
    """

    def __init__(self, coordinator: LocalCoordinator, socket_path: str,
                 listening: socket.socket | None = None,
                 workers_parent: int | None = None) -> None:
        self._coordinator = coordinator
        self.socket_path = socket_path
        self._workers_parent = workers_parent if workers_parent is not None else os.getpid()
        self._sock = listening if listening is not None else listen_unix(socket_path)
        # Wakes the workers' watchers (see RemoteCoordinator) on every seal-state change.
        self._changed = threading.Condition()
        coordinator.on_change(self._notify)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def start(self) -> None:
        threading.Thread(target=self._serve, name="coordinator", daemon=True).start()

    def close(self) -> None:
        """Stop accepting (the accept thread then returns)."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # never listened, or already closed
        self._sock.close()

    def close_in_child(self) -> None:
        """A forked child must not keep the listening socket open."""
        self._sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _peer_allowed(self, conn: socket.socket) -> bool:
        raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        pid, uid, _gid = _PEERCRED.unpack(raw)
        try:
            return uid == os.getuid() and _parent_pid(pid) == self._workers_parent
        except (OSError, ValueError, IndexError):
            return False

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            if not self._peer_allowed(conn):
                log.warning("event=coordinator_peer_refused")
                return
            try:
                while True:
                    request, blob = _recv(conn)
                    wipe(blob)  # requests carry no keys
                    op = request.get("op")
                    if op == WATCH:
                        watched = self._watch(conn, int((request.get("args") or {})["since"]))
                        if watched is None:
                            return
                        _send(conn, watched)
                        continue
                    if op == ENCRYPTION_COUNTER:
                        counter = self._coordinator.encryption_counter()
                        socket.send_fds(conn, [_FD_MARK], [counter.fileno()])
                        continue
                    reply, keys = self._dispatch(request)
                    try:
                        _send(conn, reply, keys)
                    finally:
                        wipe(keys)
                        spec = OPERATIONS.get(op) if isinstance(op, str) else None
                        if spec is not None and spec.secret_result:
                            _wipe_share_texts(reply.get("result"))
            except (ConnectionError, OSError, ValueError, KeyError, TypeError):
                return

    def _watch(self, conn: socket.socket, since: int) -> dict[str, Any] | None:
        """Answer once the seal generation differs from ``since``; None if the worker left."""
        c = self._coordinator
        while True:
            with self._changed:
                moved = self._changed.wait_for(lambda: c.generation() != since,
                                               timeout=_WATCH_PEER_CHECK)
            if moved:
                generation, sealed = c.seal_state()
                return {"ok": True, "result": {"generation": generation, "sealed": sealed}}
            try:
                if conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                    return None
            except BlockingIOError:
                continue

    def _dispatch(self, request: dict[str, Any]) -> tuple[dict[str, Any], bytearray | None]:
        c = self._coordinator
        op = request.get("op")
        try:
            if op == SNAPSHOT:
                snap = c.snapshot()
                try:
                    result, keys = snapshot_to_wire(snap)
                finally:
                    if snap.keyring is not None:
                        snap.keyring.wipe()  # our copy; the worker gets the bytes
                return {"ok": True, "result": result}, keys
            return {"ok": True, "result": call_operation(c, op, request.get("args") or {})}, None
        except errors.StrongroomError as exc:
            return error_to_wire(exc), None
        except Exception:  # noqa: BLE001 - never kill the coordinator thread
            log.exception("event=coordinator_error op=%s", op if isinstance(op, str) else "?")
            return {"ok": False, "type": "StrongroomError", "status": 500,
                    "message": "internal error"}, None


class RemoteCoordinator:
    """A worker's handle on the owner's coordinator; fails closed (sealed) if unreachable.

    Every keyring it hands out is remembered (weakly) with the generation it was
    current at, and a watcher thread, started with the first one, waits on its own
    connection for the coordinator to report a seal: it then wipes those keyrings
    at once, sealing the worker's barrier even if no request ever comes again.
    """

    def __init__(self, socket_path: str, counters: SharedCounters) -> None:
        self._socket_path = socket_path
        self._counters = counters
        self._local = threading.local()
        self._issued: list[tuple[int, weakref.ref[Keyring]]] = []
        self._issued_lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._watcher_pid = 0
        self._seal_listeners: list[Callable[[], None]] = []
        self._counter: EncryptionCounter | None = None
        self._counter_pid = 0

    def generation(self) -> int:
        return self._counters.get(Slot.SEAL)

    def _conn(self) -> socket.socket:
        conn: socket.socket | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(30)
            conn.connect(self._socket_path)
            self._local.conn = conn
        return conn

    def call(self, op: str, **args: Any) -> Any:
        """Call an allow-listed coordinator method in the owner; its errors keep their type.

        Raises:
            ValueError: ``op`` is not in ``OPERATIONS`` (a programming error).
            SealedError: the owner cannot be reached (fail closed).
        """
        if op not in OPERATIONS:
            raise ValueError(f"{op!r} is not an allow-listed coordinator operation")
        result, blob = self._call_keys(op, **args)
        wipe(blob)
        return result

    def _call_keys(self, op: str, **args: Any) -> tuple[Any, bytearray]:
        spec = OPERATIONS.get(op)
        attempts: tuple[int, ...] = (1, 2)
        if spec is not None and not spec.idempotent:
            # Sent once, on a fresh connection (a cached one may have gone stale): the
            # retry below is for calls that may safely run twice.
            self._drop_conn()
            attempts = (2,)
        for attempt in attempts:
            try:
                conn = self._conn()
                _send(conn, {"op": op, "args": args})
                reply, blob = _recv(conn)
                break
            except (OSError, ConnectionError):
                self._drop_conn()
                if attempt == 2:
                    raise errors.SealedError("Vault is sealed") from None
        if reply.get("ok"):
            return reply.get("result"), blob
        wipe(blob)
        raise error_from_wire(reply)

    def _drop_conn(self) -> None:
        conn: socket.socket | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def encryption_counter(self) -> EncryptionCounter:
        """The node's shared encryption count, attached once per process."""
        if self._counter is not None and self._counter_pid == os.getpid():
            return self._counter
        for attempt in (1, 2):
            fds: list[int] = []
            try:
                conn = self._conn()
                _send(conn, {"op": ENCRYPTION_COUNTER, "args": {}})
                mark, fds, _flags, _addr = socket.recv_fds(conn, len(_FD_MARK), 1)
                if mark != _FD_MARK or len(fds) != 1:
                    raise ConnectionError("malformed coordinator answer")
                self._counter, self._counter_pid = EncryptionCounter(fds.pop()), os.getpid()
                return self._counter
            except (OSError, ConnectionError, ValueError):
                for fd in fds:
                    os.close(fd)
                self._drop_conn()
                if attempt == 2:
                    raise errors.SealedError("Vault is sealed") from None
        raise AssertionError("unreachable")

    def snapshot(self) -> NodeSnapshot:
        counter = self.encryption_counter()
        snap = snapshot_from_wire(*self._call_keys(SNAPSHOT), counter)
        if snap.keyring is not None:
            with self._issued_lock:
                self._issued = [(g, r) for g, r in self._issued if r() is not None]
                self._issued.append((snap.generation, weakref.ref(snap.keyring)))
            self._ensure_watcher(snap.generation)
        return snap

    # -- the seal watcher ---------------------------------------------------------

    def on_seal(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from the watcher) after it wiped the keyrings on a seal.

        For key material held beside the keyring (the core's token salt).
        """
        self._seal_listeners.append(listener)

    def _ensure_watcher(self, since: int) -> None:
        with self._issued_lock:
            alive = self._watcher is not None and self._watcher.is_alive()
            if alive and self._watcher_pid == os.getpid():
                return
            self._watcher_pid = os.getpid()
            self._watcher = threading.Thread(target=self._watch, args=(since,),
                                             name="seal-watcher", daemon=True)
            self._watcher.start()

    def _wipe_issued(self, up_to: int | None) -> None:
        """Wipe the keyrings handed out at generation ``up_to`` or before (None: all)."""
        with self._issued_lock:
            keep = []
            for generation, ref in self._issued:
                ring = ref()
                if ring is None:
                    continue
                if up_to is None or generation <= up_to:
                    ring.wipe()
                else:
                    keep.append((generation, ref))
            self._issued = keep
        for listener in self._seal_listeners:
            listener()

    def _watch(self, since: int) -> None:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(self._socket_path)
                while True:
                    _send(conn, {"op": WATCH, "args": {"since": since}})
                    reply, blob = _recv(conn)
                    wipe(blob)
                    state = reply["result"]
                    since = int(state["generation"])
                    if state["sealed"]:
                        self._wipe_issued(since)
        except (OSError, ConnectionError, ValueError, KeyError, TypeError):
            # The coordinator is gone (the owner died or is exiting): fail closed.
            log.warning("event=seal_watcher_lost: keys wiped")
            self._wipe_issued(None)

    # -- typed forwarders of OPERATIONS (what SealCoordinator declares) ----------------

    def seal_status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("seal_status")
        return result

    def seal_backend_status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("seal_backend_status")
        return result

    def initialize(
        self, shares: int, threshold: int, root_token_id: str | None = None, *,
        pgp_keys: list[str] | None = None, root_token_pgp_key: str | None = None,
        recovery_shares: int = 0, recovery_threshold: int = 0,
        recovery_pgp_keys: list[str] | None = None,
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "initialize", shares=shares, threshold=threshold, root_token_id=root_token_id,
            pgp_keys=pgp_keys, root_token_pgp_key=root_token_pgp_key,
            recovery_shares=recovery_shares, recovery_threshold=recovery_threshold,
            recovery_pgp_keys=recovery_pgp_keys,
        )
        return result

    def unseal(self, key: str | None, reset: bool = False,
               migrate: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self.call("unseal", key=key, reset=reset, migrate=migrate)
        return result

    def seal(self) -> None:
        self.call("seal")

    def rotate(self) -> None:
        self.call("rotate")

    def step_down(self) -> None:
        self.call("step_down")

    def ha_lost(self) -> None:
        self.call("ha_lost")

    def rekey_status(self, target: str = "barrier") -> dict[str, Any]:
        result: dict[str, Any] = self.call("rekey_status", target=target)
        return result

    def rekey_init(self, target: str = "barrier", secret_shares: int = 0,
                   secret_threshold: int = 0, pgp_keys: list[str] | None = None,
                   backup: bool = False, require_verification: bool = False
                   ) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "rekey_init", target=target, secret_shares=secret_shares,
            secret_threshold=secret_threshold, pgp_keys=pgp_keys, backup=backup,
            require_verification=require_verification)
        return result

    def rekey_cancel(self, target: str = "barrier") -> None:
        self.call("rekey_cancel", target=target)

    def rekey_update(self, key: str | None, nonce: str = "",
                     target: str = "barrier") -> dict[str, Any]:
        result: dict[str, Any] = self.call("rekey_update", key=key, nonce=nonce, target=target)
        return result

    def rekey_verify_status(self, target: str = "barrier") -> dict[str, Any]:
        result: dict[str, Any] = self.call("rekey_verify_status", target=target)
        return result

    def rekey_verify(self, key: str | None, nonce: str = "",
                     target: str = "barrier") -> dict[str, Any]:
        result: dict[str, Any] = self.call("rekey_verify", key=key, nonce=nonce, target=target)
        return result

    def rekey_verify_restart(self, target: str = "barrier") -> dict[str, Any]:
        result: dict[str, Any] = self.call("rekey_verify_restart", target=target)
        return result

    def rekey_backup(self, target: str = "barrier") -> dict[str, Any]:
        result: dict[str, Any] = self.call("rekey_backup", target=target)
        return result

    def rekey_backup_delete(self, target: str = "barrier") -> None:
        self.call("rekey_backup_delete", target=target)

    def rotate_root(self) -> None:
        self.call("rotate_root")

    def generate_root_status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("generate_root_status")
        return result

    def generate_root_start(self, otp: str | None = None,
                            pgp_key: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.call("generate_root_start", otp=otp, pgp_key=pgp_key)
        return result

    def generate_root_cancel(self) -> None:
        self.call("generate_root_cancel")

    def generate_root_update(self, key: str, nonce: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("generate_root_update", key=key, nonce=nonce)
        return result
