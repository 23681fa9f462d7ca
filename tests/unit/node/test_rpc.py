"""The coordinator socket's message half: framing, refusals, the operations allow-list,
error types across the socket, keys outside the JSON, the encryption count's descriptor.

A real CoordinatorServer and RemoteCoordinator talk over a real Unix socket in this
process; the peer check (tests/unit/node/test_rpc_peer.py) is waived for it, since
this process is the server's own, which that check refuses.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom import errors
from strongroom.barrier.barrier import InvalidRootKeyError
from strongroom.barrier.secmem import wipe
from strongroom.config import dev_config
from strongroom.node import wire
from strongroom.node.coordinator import LocalCoordinator
from strongroom.node.rpc import CoordinatorServer, RemoteCoordinator
from strongroom.node.shared import SharedCounters
from strongroom.physical.inmem import InmemBackend
from strongroom.wsgi import local_coordinator


@pytest.fixture
def coordinator() -> LocalCoordinator:
    return local_coordinator(dev_config(), InmemBackend())


@pytest.fixture
def socket_path(coordinator: LocalCoordinator,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="sr-rpc-") as directory:
        path = str(Path(directory) / "coord.sock")
        server = CoordinatorServer(coordinator, path)
        monkeypatch.setattr(server, "_peer_allowed", lambda conn: True)
        server.start()
        yield path
        server.close_in_child()


@pytest.fixture
def remote(socket_path: str) -> RemoteCoordinator:
    return RemoteCoordinator(socket_path, SharedCounters())


def raw_call(path: str, payload: bytes) -> tuple[dict[str, Any], bytearray] | None:
    """Send ``payload`` as it is; the reply, or None when the server hung up."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(payload)
        try:
            return wire._recv(sock)
        except ConnectionError:
            return None


def message(doc: dict[str, Any]) -> bytes:
    body = json.dumps(doc).encode()
    return struct.pack(">I", len(body)) + body


# -- framing ---------------------------------------------------------------------------


def test_a_message_and_its_key_blob_round_trip() -> None:
    a, b = socket.socketpair()
    with a, b:
        wire._send(a, {"op": "x", "args": {"key": "00ff" * 8}}, bytearray(b"\x01\x02\x03"))
        doc, blob = wire._recv(b)
    assert doc == {"op": "x", "args": {"key": "00ff" * 8}}
    assert blob == b"\x01\x02\x03"


@pytest.mark.parametrize("payload", [
    struct.pack(">I", wire._MAX_MESSAGE + 1),  # announces more than a message may hold
    struct.pack(">I", 4) + b"\xff\xfe{}",  # not UTF-8
    struct.pack(">I", 5) + b"{nope",  # not JSON
    message([1, 2]),  # type: ignore[arg-type] # JSON, not an object
    message({"op": "seal_status", "key_bytes": -1}),
    message({"op": "seal_status", "key_bytes": wire._MAX_MESSAGE + 1}),
    message({"op": "seal_status", "key_bytes": "3"}),
])
def test_malformed_or_oversized_messages_are_refused(payload: bytes) -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(payload)
        a.shutdown(socket.SHUT_WR)
        with pytest.raises(ConnectionError):
            wire._recv(b)


def test_the_server_hangs_up_on_a_malformed_message(socket_path: str) -> None:
    assert raw_call(socket_path, struct.pack(">I", 5) + b"{nope") is None
    assert raw_call(socket_path, struct.pack(">I", wire._MAX_MESSAGE + 1)) is None
    # ...and keeps serving well-formed ones.
    answer = raw_call(socket_path, message({"op": "seal_status", "args": {}}))
    assert answer is not None and answer[0]["ok"] is True


# -- the allow-list ----------------------------------------------------------------------


@pytest.mark.parametrize("op", ["shutdown", "unseal_with_root_key", "_open", "close",
                                "checkpoint_encryptions", None, 3, ["seal"]])
def test_only_allow_listed_operations_run(socket_path: str, coordinator: LocalCoordinator,
                                          op: object) -> None:
    coordinator.initialize(1, 1)
    answer = raw_call(socket_path, message({"op": op, "args": {"root_key": "00" * 32}}))
    assert answer is not None
    reply, _ = answer
    assert reply["ok"] is False and reply["type"] == "BadRequestError"
    assert reply["message"] == f"unknown coordinator operation {op!r}"
    assert coordinator.seal_status()["sealed"] is True


def test_an_argument_the_operation_does_not_take_is_refused(socket_path: str) -> None:
    answer = raw_call(socket_path, message({"op": "seal_status", "args": {"x": 1}}))
    assert answer is not None
    assert answer[0]["message"] == "unknown argument 'x' for 'seal_status'"


def test_the_remote_refuses_an_operation_it_may_not_forward(remote: RemoteCoordinator) -> None:
    with pytest.raises(ValueError, match="not an allow-listed"):
        remote.call("unseal_with_root_key", root_key=b"")


def test_every_operation_is_a_coordinator_method_taking_its_arguments() -> None:
    import inspect

    for name, spec in wire.OPERATIONS.items():
        method = getattr(LocalCoordinator, name)
        params = inspect.signature(method).parameters
        assert set(spec.args) <= set(params), name
        assert set(spec.secret_args) <= set(spec.args), name


# -- errors keep their type --------------------------------------------------------------


def test_errors_keep_their_type_status_and_message(remote: RemoteCoordinator,
                                                   coordinator: LocalCoordinator) -> None:
    with pytest.raises(errors.NotInitializedError) as not_init:
        remote.unseal("00" * 33)
    assert (not_init.value.status, not_init.value.message) == (501, "Vault is not initialized")
    with pytest.raises(errors.BadRequestError) as bad:
        remote.initialize(3, 5)
    assert bad.value.status == 400
    assert bad.value.message == "invalid seal configuration: threshold cannot be larger than shares"
    keys = remote.initialize(1, 1)["keys"]
    with pytest.raises(InvalidRootKeyError):  # a BadRequestError subclass from the barrier
        remote.unseal("11" * 32)
    with pytest.raises(errors.SealedError) as sealed:
        remote.rotate()
    assert sealed.value.status == 503
    remote.unseal(keys[0])
    assert coordinator.seal_status()["sealed"] is False


@pytest.mark.parametrize("exc", [
    errors.BadRequestError("b"), errors.PermissionDeniedError(), errors.NotFoundError("n"),
    errors.SealedError(), errors.NotInitializedError(), errors.FencedError("f"),
    errors.CorruptEntryError("core/x", "bad"), InvalidRootKeyError("unseal failed"),
])
def test_each_error_type_survives_the_wire(exc: errors.StrongroomError) -> None:
    back = wire.error_from_wire(json.loads(json.dumps(wire.error_to_wire(exc))))
    assert type(back) is type(exc)
    assert (back.status, back.message, str(back)) == (exc.status, exc.message, str(exc))
    if isinstance(exc, errors.CorruptEntryError):
        assert isinstance(back, errors.CorruptEntryError) and back.key == "core/x"


def test_an_unknown_error_type_is_a_500() -> None:
    for name in ("ValueError", "SystemExit", "Nope"):
        back = wire.error_from_wire({"ok": False, "type": name, "status": 400, "message": "m"})
        assert type(back) is errors.StrongroomError
        assert (back.status, back.message) == (500, "m")


# -- keys never in the JSON --------------------------------------------------------------


def test_snapshot_keys_travel_outside_the_json(socket_path: str,
                                               coordinator: LocalCoordinator) -> None:
    keys = coordinator.initialize(1, 1)["keys"]
    coordinator.unseal(keys[0])
    coordinator.rotate()
    mine = coordinator.snapshot().keyring
    assert mine is not None
    secrets = [bytes(t.key) for t in mine.terms]
    answer = raw_call(socket_path, message({"op": "snapshot", "args": {}}))
    assert answer is not None
    doc, blob = answer
    text = json.dumps(doc)
    for key in secrets:
        assert key.hex() not in text and base64.b64encode(key).decode() not in text
    assert bytes(blob) == b"".join(secrets)
    assert [t[:2] for t in doc["result"]["keyring"]["terms"]] == [[1, 32], [2, 32]]


def test_a_snapshot_through_the_remote_opens_the_same_keyring(
        remote: RemoteCoordinator, coordinator: LocalCoordinator) -> None:
    remote.unseal(remote.initialize(1, 1)["keys"][0])
    theirs = remote.snapshot().keyring
    mine = coordinator.snapshot().keyring
    assert theirs is not None and mine is not None and theirs.same_keys(mine)


def test_the_unseal_share_text_is_zeroed_in_the_owner(
        monkeypatch: pytest.MonkeyPatch, remote: RemoteCoordinator) -> None:
    zeroed: list[object] = []
    real = wire.wipe_immutable_str
    monkeypatch.setattr(wire, "wipe_immutable_str",
                        lambda text: (zeroed.append(text), real(text)))
    key = remote.initialize(1, 1)["keys"][0]
    remote.unseal(key)
    assert any(isinstance(t, str) and set(t) == {"\0"} and len(t) == len(key) for t in zeroed)


# -- the encryption count ----------------------------------------------------------------


def test_the_encryption_count_is_shared_through_the_socket(
        remote: RemoteCoordinator, coordinator: LocalCoordinator) -> None:
    remote.unseal(remote.initialize(1, 1)["keys"][0])
    before = coordinator.encryption_counter().total()
    theirs = remote.snapshot().keyring
    assert theirs is not None and theirs.counter is not None
    assert theirs.counter.fileno() != coordinator.encryption_counter().fileno()
    theirs.count_encryptions(5)
    assert coordinator.encryption_counter().total() == before + 5
    assert theirs.encryptions() == before + 5


def test_a_call_that_must_not_run_twice_is_sent_once_when_the_answer_is_lost() -> None:
    """The owner may have initialized (or rotated) before the connection broke: sending
    it again would answer "already initialized" and the shares would be lost for good."""
    received: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sr-rpc-") as directory:
        path = str(Path(directory) / "coord.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(8)

        def hang_up_after_reading() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                with conn:
                    try:
                        doc, blob = wire._recv(conn)
                    except (ConnectionError, OSError):
                        continue
                    wipe(blob)
                    received.append(str(doc["op"]))

        threading.Thread(target=hang_up_after_reading, daemon=True).start()
        remote = RemoteCoordinator(path, SharedCounters())
        for op, args in (("initialize", {"shares": 1, "threshold": 1}), ("rotate", {})):
            received.clear()
            with pytest.raises(errors.SealedError):
                remote.call(op, **args)
            assert received == [op]
        received.clear()
        with pytest.raises(errors.SealedError):
            remote.call("seal_status")
        assert received == ["seal_status", "seal_status"]  # a read may be sent again
        listener.close()
