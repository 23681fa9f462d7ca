"""The coordinator socket's messages: framing, the operations allow-list, errors, snapshots.

A message is a 4-byte length, then JSON that never holds a key; when the JSON has
"key_bytes", that many bytes of raw keys follow it. Frames are built and read
into buffers that are wiped, so no share, token or key is left behind in freed
memory (issue #9; see the comments). node/rpc.py serves and calls these over
the socket.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strongroom import errors
from strongroom.barrier.barrier import InvalidRootKeyError
from strongroom.barrier.counter import EncryptionCounter
from strongroom.barrier.keyring import Keyring, KeyTerm
from strongroom.barrier.secmem import wipe, wipe_immutable, wipe_immutable_str
from strongroom.ha.state import HAStatus
from strongroom.node.coordinator import LocalCoordinator, NodeSnapshot

# A message: 4-byte length, the JSON (never a key); when the JSON has "key_bytes",
# that many bytes of raw keys follow it.
_LEN = struct.Struct(">I")
_MAX_MESSAGE = 1 << 20


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
    except ValueError:  # UnicodeDecodeError, JSONDecodeError
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
    """Zero the secrets' texts in an answer once it has been sent: the shares and root
    token of init, the OTP and encoded root token of generate-root."""
    if isinstance(result, dict):
        for field in ("keys", "keys_base64", "recovery_keys", "recovery_keys_base64"):
            for text in result.get(field) or ():
                wipe_immutable_str(text)
        for field in ("root_token", "otp", "encoded_token", "encoded_root_token"):
            wipe_immutable_str(result.get(field))


@dataclass(frozen=True)
class Operation:
    """How a worker's call of a coordinator method crosses the socket."""

    # The keyword arguments the method takes from a worker; any other is refused.
    args: tuple[str, ...] = ()
    # Arguments holding share texts, zeroed in the owner once the call returned.
    secret_args: tuple[str, ...] = ()
    # The answer holds shares and a root token: their texts are zeroed once sent.
    secret_result: bool = False
    # Safe to send again when the connection broke before the answer came: the owner may
    # have run it already. ``initialize`` is not (a second run says "already initialized"
    # and the caller never sees the shares), nor is ``rotate`` (two new key terms).
    idempotent: bool = True


# The coordinator methods a worker may call, by name: the one place to add one (plus its
# typed forwarder on RemoteCoordinator, for mypy). Nothing else is callable.
OPERATIONS: dict[str, Operation] = {
    "seal_status": Operation(),
    "seal_backend_status": Operation(),
    "initialize": Operation(args=("shares", "threshold", "root_token_id", "pgp_keys",
                                  "root_token_pgp_key", "recovery_shares",
                                  "recovery_threshold", "recovery_pgp_keys"),
                            secret_result=True, idempotent=False),
    "unseal": Operation(args=("key", "reset", "migrate"), secret_args=("key",)),
    "seal": Operation(),
    "rotate": Operation(idempotent=False),
    "step_down": Operation(),
    "ha_lost": Operation(),
    # Rekey (node/rekey.py): shares arrive as text (zeroed once used) and new ones
    # leave as text (zeroed once sent); a round must never see a share twice.
    "rekey_status": Operation(args=("target",)),
    "rekey_init": Operation(args=("target", "secret_shares", "secret_threshold", "pgp_keys",
                                  "backup", "require_verification"), idempotent=False),
    "rekey_cancel": Operation(args=("target",)),
    "rekey_update": Operation(args=("key", "nonce", "target"), secret_args=("key",),
                              secret_result=True, idempotent=False),
    "rekey_verify_status": Operation(args=("target",)),
    "rekey_verify": Operation(args=("key", "nonce", "target"), secret_args=("key",),
                              idempotent=False),
    "rekey_verify_restart": Operation(args=("target",)),
    "rekey_backup": Operation(args=("target",)),
    "rekey_backup_delete": Operation(args=("target",)),
    "rotate_root": Operation(idempotent=False),
    # generate-root (node/generate_root.py): the OTP and the encoded token are secrets.
    "generate_root_status": Operation(),
    "generate_root_start": Operation(args=("otp", "pgp_key"), secret_args=("otp",),
                                     secret_result=True, idempotent=False),
    "generate_root_cancel": Operation(),
    "generate_root_update": Operation(args=("key", "nonce"), secret_args=("key",),
                                      secret_result=True, idempotent=False),
}
# Special operations, handled beside the allow-list: keys as raw bytes after the JSON;
# the encryption count's descriptor (SCM_RIGHTS); a long poll on the seal generation.
SNAPSHOT = "snapshot"
ENCRYPTION_COUNTER = "encryption_counter"
WATCH = "watch"
_FD_MARK = b"F"


def _error_types() -> dict[str, type[errors.StrongroomError]]:
    """Every error class of strongroom/errors.py (and the barrier's root-key error), by name."""
    found = {name: obj for name, obj in vars(errors).items()
             if isinstance(obj, type) and issubclass(obj, errors.StrongroomError)}
    found[InvalidRootKeyError.__name__] = InvalidRootKeyError
    return found


ERROR_TYPES = _error_types()


def error_to_wire(exc: errors.StrongroomError) -> dict[str, Any]:
    name = type(exc).__name__
    reply: dict[str, Any] = {"ok": False, "type": name if name in ERROR_TYPES
                             else "StrongroomError", "status": exc.status,
                             "message": exc.message}
    if isinstance(exc, errors.CorruptEntryError):
        reply["key"] = exc.key
    return reply


def error_from_wire(reply: dict[str, Any]) -> errors.StrongroomError:
    """The error the owner raised, as the same type; an unknown type is a 500."""
    message = str(reply.get("message", ""))
    cls = ERROR_TYPES.get(str(reply.get("type")))
    if cls is None:
        unknown = errors.StrongroomError(message)
        unknown.status = 500
        return unknown
    # Built without the class's own __init__, whose signature varies (CorruptEntryError).
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.message = message
    status = reply.get("status")
    if isinstance(status, int) and not isinstance(status, bool) and status != cls.status:
        exc.status = status  # an instance's own status, as the HTTP layer would have seen it
    if isinstance(exc, errors.CorruptEntryError):
        exc.key = str(reply.get("key", ""))
    return exc


def call_operation(coordinator: LocalCoordinator, op: object, args: object) -> Any:
    """Run an allow-listed coordinator method for a worker.

    Raises:
        BadRequestError: ``op`` is not allow-listed, or an argument is not its own.
    """
    spec = OPERATIONS.get(op) if isinstance(op, str) else None
    if spec is None or not isinstance(op, str):
        raise errors.BadRequestError(f"unknown coordinator operation {op!r}")
    if not isinstance(args, dict):
        raise errors.BadRequestError(f"malformed arguments for {op!r}")
    try:
        unknown = sorted(set(args) - set(spec.args))
        if unknown:
            raise errors.BadRequestError(f"unknown argument {unknown[0]!r} for {op!r}")
        return getattr(coordinator, op)(**args)
    finally:
        for name in spec.secret_args:
            wipe_immutable_str(args.get(name))


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


def snapshot_from_wire(doc: dict[str, Any], blob: bytearray,
                       counter: EncryptionCounter | None = None) -> NodeSnapshot:
    """Rebuild a snapshot; its keys are copied out of ``blob``, which is wiped.

    The keyring carries ``counter``, the node's encryption count.
    """
    ring = doc["keyring"]
    keyring = None
    terms: list[KeyTerm] = []
    try:
        if ring is not None:
            offset = 0
            for t, size, ts in ring["terms"]:
                key = blob[offset:offset + int(size)]
                offset += int(size)
                terms.append(KeyTerm(int(t), key, datetime.fromisoformat(ts)))
            if offset != len(blob):
                raise ConnectionError("malformed coordinator snapshot")
            keyring = Keyring(terms=tuple(terms), active_term=int(ring["active_term"]),
                              counter=counter)
    except BaseException:
        for term in terms:
            wipe(term.key)
        raise
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
