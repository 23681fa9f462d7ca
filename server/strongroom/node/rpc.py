"""The coordinator, served to worker processes over a Unix socket.

Only processes of the same user whose parent is the serving (master) process
may connect: the peer's credentials are checked with SO_PEERCRED. Messages are
length-prefixed JSON. Key material crosses this socket only as the keyring
sent to workers; the root key never leaves the coordinator.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import struct
import threading
from datetime import datetime
from typing import Any

from strongroom import errors
from strongroom.barrier.keyring import Keyring, KeyTerm
from strongroom.ha.state import HAStatus
from strongroom.node.coordinator import LocalCoordinator, NodeSnapshot
from strongroom.node.shared import SharedCounters, Slot

log = logging.getLogger(__name__)
_LEN = struct.Struct(">I")
_MAX_MESSAGE = 1 << 20
_PEERCRED = struct.Struct("3i")


def _send(sock: socket.socket, doc: dict[str, Any]) -> None:
    body = json.dumps(doc).encode()
    sock.sendall(_LEN.pack(len(body)) + body)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("coordinator connection closed")
        chunks += chunk
    return bytes(chunks)


def _recv(sock: socket.socket) -> dict[str, Any]:
    (size,) = _LEN.unpack(_recv_exact(sock, _LEN.size))
    if size > _MAX_MESSAGE:
        raise ConnectionError("coordinator message too large")
    doc = json.loads(_recv_exact(sock, size))
    if not isinstance(doc, dict):
        raise ConnectionError("malformed coordinator message")
    return doc


def _parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        # The command name may contain spaces; fields resume after its ')'.
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def snapshot_to_wire(snap: NodeSnapshot) -> dict[str, Any]:
    ring = snap.keyring
    return {
        "generation": snap.generation,
        "initialized": snap.initialized,
        "sealed": snap.sealed,
        "cluster_name": snap.cluster_name,
        "cluster_id": snap.cluster_id,
        "ha": snap.ha.to_wire(),
        "keyring": None
        if ring is None
        else {
            "active_term": ring.active_term,
            "terms": [
                [t.term, base64.b64encode(t.key).decode(), t.install_time.isoformat()]
                for t in ring.terms
            ],
        },
    }


def snapshot_from_wire(doc: dict[str, Any]) -> NodeSnapshot:
    ring = doc["keyring"]
    keyring = (
        None
        if ring is None
        else Keyring(
            terms=tuple(
                KeyTerm(int(t), base64.b64decode(k), datetime.fromisoformat(ts))
                for t, k, ts in ring["terms"]
            ),
            active_term=int(ring["active_term"]),
        )
    )
    return NodeSnapshot(
        generation=int(doc["generation"]),
        initialized=bool(doc["initialized"]),
        sealed=bool(doc["sealed"]),
        keyring=keyring,
        cluster_name=doc["cluster_name"],
        cluster_id=doc["cluster_id"],
        ha=HAStatus.from_wire(doc.get("ha")),
    )


class CoordinatorServer:
    """Serves a LocalCoordinator on a Unix socket from a daemon thread."""

    def __init__(self, coordinator: LocalCoordinator, socket_path: str) -> None:
        self._coordinator = coordinator
        self.socket_path = socket_path
        self._owner_pid = os.getpid()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            self._sock.bind(socket_path)
        finally:
            os.umask(old_umask)
        self._sock.listen(64)
        self._sock.set_inheritable(False)

    def start(self) -> None:
        threading.Thread(target=self._serve, name="coordinator", daemon=True).start()

    def close_in_child(self) -> None:
        """Forked workers must not keep the listening socket open."""
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
            return uid == os.getuid() and _parent_pid(pid) == self._owner_pid
        except (OSError, ValueError, IndexError):
            return False

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            if not self._peer_allowed(conn):
                log.warning("event=coordinator_peer_refused")
                return
            try:
                while True:
                    request = _recv(conn)
                    _send(conn, self._dispatch(request))
            except (ConnectionError, OSError, ValueError):
                return

    def _dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        c = self._coordinator
        op = request.get("op")
        args = request.get("args") or {}
        try:
            result: Any
            if op == "snapshot":
                result = snapshot_to_wire(c.snapshot())
            elif op == "seal_status":
                result = c.seal_status()
            elif op == "initialize":
                result = c.initialize(
                    int(args["shares"]), int(args["threshold"]), args.get("root_token_id"),
                    pgp_keys=args.get("pgp_keys"),
                    root_token_pgp_key=args.get("root_token_pgp_key"),
                )
            elif op == "unseal":
                result = c.unseal(args.get("key"), bool(args.get("reset", False)))
            elif op == "seal":
                c.seal()
                result = None
            elif op == "rotate":
                c.rotate()
                result = None
            elif op == "step_down":
                c.step_down()
                result = None
            elif op == "ha_lost":
                c.ha_lost()
                result = None
            else:
                raise errors.BadRequestError(f"unknown coordinator operation {op!r}")
            return {"ok": True, "result": result}
        except errors.StrongroomError as exc:
            return {"ok": False, "type": type(exc).__name__, "status": exc.status,
                    "message": exc.message}
        except Exception:  # noqa: BLE001 - never kill the coordinator thread
            log.exception("event=coordinator_error op=%s", op)
            return {"ok": False, "type": "StrongroomError", "status": 500,
                    "message": "internal error"}


class RemoteCoordinator:
    """A worker's handle on the master's coordinator; fails closed (sealed) if unreachable."""

    def __init__(self, socket_path: str, counters: SharedCounters) -> None:
        self._socket_path = socket_path
        self._counters = counters
        self._local = threading.local()

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

    def _call(self, op: str, **args: Any) -> Any:
        for attempt in (1, 2):
            try:
                conn = self._conn()
                _send(conn, {"op": op, "args": args})
                reply = _recv(conn)
                break
            except (OSError, ConnectionError):
                self._local.conn = None
                if attempt == 2:
                    raise errors.SealedError("Vault is sealed") from None
        if reply.get("ok"):
            return reply.get("result")
        # Status travels with the error so the HTTP layer maps it exactly as in-process.
        exc = errors.StrongroomError(str(reply.get("message")))
        exc.status = int(reply.get("status", 500))
        raise exc

    def snapshot(self) -> NodeSnapshot:
        return snapshot_from_wire(self._call("snapshot"))

    def seal_status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("seal_status")
        return result

    def initialize(
        self, shares: int, threshold: int, root_token_id: str | None = None, *,
        pgp_keys: list[str] | None = None, root_token_pgp_key: str | None = None,
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "initialize", shares=shares, threshold=threshold, root_token_id=root_token_id,
            pgp_keys=pgp_keys, root_token_pgp_key=root_token_pgp_key,
        )
        return result

    def unseal(self, key: str | None, reset: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self._call("unseal", key=key, reset=reset)
        return result

    def seal(self) -> None:
        self._call("seal")

    def rotate(self) -> None:
        self._call("rotate")

    def step_down(self) -> None:
        self._call("step_down")

    def ha_lost(self) -> None:
        self._call("ha_lost")
