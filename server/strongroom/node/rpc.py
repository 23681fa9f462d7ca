"""The coordinator, served to worker processes over a Unix socket.

Only processes of the same user whose parent is the gunicorn arbiter (the workers)
may connect: the peer's credentials are checked with SO_PEERCRED. Messages are
length-prefixed JSON. Key material crosses this socket only as the keyring
sent to workers; the root key never leaves the coordinator.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import socket
import struct
import threading
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any

from strongroom import errors
from strongroom.barrier.keyring import Keyring, KeyTerm
from strongroom.barrier.secmem import wipe, wipe_immutable, wipe_immutable_str
from strongroom.ha.state import HAStatus
from strongroom.node.coordinator import LocalCoordinator, NodeSnapshot
from strongroom.node.shared import SharedCounters, Slot

log = logging.getLogger(__name__)
# A message: 4-byte length, the JSON (never a key); when the JSON has "key_bytes",
# that many bytes of raw keys follow it.
_LEN = struct.Struct(">I")
_MAX_MESSAGE = 1 << 20
_PEERCRED = struct.Struct("3i")
# An idle watcher's server thread checks this often whether its worker is still there.
_WATCH_PEER_CHECK = 30.0


# String values JSON writes as they are (printable ASCII but '"' and '\\'): spliced
# into a frame by hand, not passed through json.dumps, whose encoder makes a quoted
# copy of each string and frees it without clearing it (a share's text left behind).
_PLAIN_STRING = re.compile(r'[ !#-\[\]-~]*')


def _skeleton(node: Any, values: list[str], marker: str) -> Any:
    """``node`` with its plain string values moved to ``values``, a placeholder each."""
    if isinstance(node, str):
        if len(node) > 1 and _PLAIN_STRING.fullmatch(node):
            values.append(node)
            return f"{marker}{len(values) - 1}"
        return node
    if isinstance(node, dict):
        return {key: _skeleton(value, values, marker) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [_skeleton(item, values, marker) for item in node]
    return node


def _frame(doc: dict[str, Any], keys: bytearray) -> bytearray:
    """Length, JSON, keys in one buffer allocated once (a growing one leaves copies)."""
    values: list[str] = []
    marker = "\u0001" + secrets.token_hex(8) + ":"
    text = json.dumps(_skeleton(doc, values, marker))
    # Literal JSON and value indexes alternate; the literals hold no secret.
    parts = re.split('"' + re.escape(json.dumps(marker)[1:-1]) + '([0-9]+)"', text)
    size = sum(len(p) if i % 2 == 0 else len(values[int(p)]) + 2 for i, p in enumerate(parts))
    frame = bytearray(_LEN.size + size + len(keys))
    _LEN.pack_into(frame, 0, size)
    pos = _LEN.size
    for i, part in enumerate(parts):
        if i % 2 == 0:
            frame[pos:pos + len(part)] = part.encode("ascii")  # ensure_ascii: len = bytes
            pos += len(part)
            continue
        raw = values[int(part)].encode("ascii")
        frame[pos] = frame[pos + len(raw) + 1] = ord('"')
        frame[pos + 1:pos + 1 + len(raw)] = raw
        wipe_immutable(raw)
        pos += len(raw) + 2
    frame[pos:] = keys
    return frame


def _send(sock: socket.socket, doc: dict[str, Any], blob: bytearray | None = None) -> None:
    """Send one message; the frame is wiped after sending (it may carry shares or keys).

    Messages carry unseal shares (init answers, unseal requests): no copy is left behind.
    """
    keys = blob if blob is not None else bytearray()
    frame = _frame({**doc, "key_bytes": len(keys)} if keys else doc, keys)
    try:
        sock.sendall(frame)
    finally:
        wipe(frame)


def _recv_exact(sock: socket.socket, size: int) -> bytearray:
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    try:
        while got < size:
            n = sock.recv_into(view[got:], size - got)
            if not n:
                raise ConnectionError("coordinator connection closed")
            got += n
    except BaseException:
        wipe(buf)
        raise
    finally:
        view.release()
    return buf


def _recv(sock: socket.socket) -> tuple[dict[str, Any], bytearray]:
    """One message: its JSON document and its key blob (a bytearray the caller wipes)."""
    (size,) = _LEN.unpack(_recv_exact(sock, _LEN.size))
    if size > _MAX_MESSAGE:
        raise ConnectionError("coordinator message too large")
    body = _recv_exact(sock, size)
    text = ""
    try:
        text = body.decode()  # decoded here, not inside json, so this copy can be wiped
        doc = json.loads(text)
    except UnicodeDecodeError:
        raise ConnectionError("malformed coordinator message") from None
    finally:
        wipe(body)
        wipe_immutable_str(text)
    if not isinstance(doc, dict):
        raise ConnectionError("malformed coordinator message")
    blob_size = doc.pop("key_bytes", 0)
    if not isinstance(blob_size, int) or not 0 <= blob_size <= _MAX_MESSAGE:
        raise ConnectionError("malformed coordinator message")
    return doc, _recv_exact(sock, blob_size)


def _wipe_share_texts(result: Any) -> None:
    """Zero the unseal shares' and root token's text in an init answer once it has been sent."""
    if isinstance(result, dict):
        for field in ("keys", "keys_base64"):
            for text in result.get(field) or ():
                wipe_immutable_str(text)
        wipe_immutable_str(result.get("root_token"))


def _parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        # The command name may contain spaces; fields resume after its ')'.
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def snapshot_to_wire(snap: NodeSnapshot) -> tuple[dict[str, Any], bytearray]:
    """The snapshot as JSON plus its keys, raw, in a separate blob (the caller wipes it).

    Keys never go into the JSON: a base64 string is an immutable copy that would
    stay in both processes' memory after a seal.
    """
    ring = snap.keyring
    terms = ring.terms if ring is not None else ()
    blob = bytearray(sum(len(t.key) for t in terms))  # allocated once, never grown
    offset = 0
    for t in terms:
        blob[offset:offset + len(t.key)] = t.key
        offset += len(t.key)
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
            "terms": [[t.term, len(t.key), t.install_time.isoformat()] for t in ring.terms],
        },
    }, blob


def snapshot_from_wire(doc: dict[str, Any], blob: bytearray) -> NodeSnapshot:
    """Rebuild a snapshot; its keys are copied out of ``blob``, which is wiped."""
    ring = doc["keyring"]
    keyring = None
    try:
        if ring is not None:
            terms = []
            offset = 0
            for t, size, ts in ring["terms"]:
                key = blob[offset:offset + int(size)]
                offset += int(size)
                terms.append(KeyTerm(int(t), key, datetime.fromisoformat(ts)))
            if offset != len(blob):
                raise ConnectionError("malformed coordinator snapshot")
            keyring = Keyring(terms=tuple(terms), active_term=int(ring["active_term"]))
    finally:
        wipe(blob)
    return NodeSnapshot(
        generation=int(doc["generation"]),
        initialized=bool(doc["initialized"]),
        sealed=bool(doc["sealed"]),
        keyring=keyring,
        cluster_name=doc["cluster_name"],
        cluster_id=doc["cluster_id"],
        ha=HAStatus.from_wire(doc.get("ha")),
    )


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
                    if request.get("op") == "watch":
                        watched = self._watch(conn, int((request.get("args") or {})["since"]))
                        if watched is None:
                            return
                        _send(conn, watched)
                        continue
                    reply, keys = self._dispatch(request)
                    try:
                        _send(conn, reply, keys)
                    finally:
                        wipe(keys)
                        if request.get("op") == "initialize":
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
        args = request.get("args") or {}
        try:
            result: Any
            if op == "snapshot":
                snap = c.snapshot()
                try:
                    result, keys = snapshot_to_wire(snap)
                finally:
                    if snap.keyring is not None:
                        snap.keyring.wipe()  # our copy; the worker gets the bytes
                return {"ok": True, "result": result}, keys
            elif op == "seal_status":
                result = c.seal_status()
            elif op == "initialize":
                result = c.initialize(
                    int(args["shares"]), int(args["threshold"]), args.get("root_token_id"),
                    pgp_keys=args.get("pgp_keys"),
                    root_token_pgp_key=args.get("root_token_pgp_key"),
                )
            elif op == "unseal":
                try:
                    result = c.unseal(args.get("key"), bool(args.get("reset", False)))
                finally:
                    wipe_immutable_str(args.get("key"))
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
            return {"ok": True, "result": result}, None
        except errors.StrongroomError as exc:
            return {"ok": False, "type": type(exc).__name__, "status": exc.status,
                    "message": exc.message}, None
        except Exception:  # noqa: BLE001 - never kill the coordinator thread
            log.exception("event=coordinator_error op=%s", op)
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
        result, blob = self._call_keys(op, **args)
        wipe(blob)
        return result

    def _call_keys(self, op: str, **args: Any) -> tuple[Any, bytearray]:
        for attempt in (1, 2):
            try:
                conn = self._conn()
                _send(conn, {"op": op, "args": args})
                reply, blob = _recv(conn)
                break
            except (OSError, ConnectionError):
                self._local.conn = None
                if attempt == 2:
                    raise errors.SealedError("Vault is sealed") from None
        if reply.get("ok"):
            return reply.get("result"), blob
        wipe(blob)
        # Status travels with the error so the HTTP layer maps it exactly as in-process.
        exc = errors.StrongroomError(str(reply.get("message")))
        exc.status = int(reply.get("status", 500))
        raise exc

    def snapshot(self) -> NodeSnapshot:
        snap = snapshot_from_wire(*self._call_keys("snapshot"))
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
                    _send(conn, {"op": "watch", "args": {"since": since}})
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
