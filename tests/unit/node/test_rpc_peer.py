"""The coordinator socket's peer check: the gate in front of the keyring.

Only a child of the serving (master) process may talk to it. Real processes
connect to a real CoordinatorServer: a child is answered; a grandchild, and the
master itself, are refused (the connection ends without a reply) and the
refusal is logged by the server.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.config import dev_config
from strongroom.node.rpc import CoordinatorServer
from strongroom.physical.inmem import InmemBackend
from strongroom.wsgi import local_coordinator

# Talks the socket's wire format (4-byte length, JSON) by hand, so the peer needs
# nothing from strongroom: prints the reply, or REFUSED when the server hangs up.
CLIENT = r"""
import json, socket, struct, sys

def ask(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(path)
    body = json.dumps({"op": "seal_status", "args": {}}).encode()
    try:
        sock.sendall(struct.pack(">I", len(body)) + body)
        head = b""
        while len(head) < 4:
            chunk = sock.recv(4 - len(head))
            if not chunk:
                return "REFUSED"
            head += chunk
    except (ConnectionResetError, BrokenPipeError):  # closed before or while we sent
        return "REFUSED"
    (size,) = struct.unpack(">I", head)
    data = b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data.decode()

if __name__ == "__main__":
    print(ask(sys.argv[1]))
"""

# A child of the test that runs CLIENT in a child of its own: a grandchild of the master.
GRANDCHILD = r"""
import subprocess, sys
done = subprocess.run([sys.executable, "-c", sys.argv[1], sys.argv[2]],
                      capture_output=True, text=True, timeout=60)
sys.stdout.write(done.stdout); sys.stderr.write(done.stderr); sys.exit(done.returncode)
"""


@pytest.fixture
def socket_path() -> Iterator[str]:
    # A short path: AF_UNIX paths are limited to 107 bytes, tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="sr-rpc-") as directory:
        path = str(Path(directory) / "coord.sock")
        server = CoordinatorServer(local_coordinator(dev_config(), InmemBackend()), path)
        server.start()
        yield path
        server.close_in_child()  # closes the listening socket; its thread then returns


def run_child(*args: str) -> str:
    done = subprocess.run([sys.executable, "-c", *args], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def refusals(caplog: pytest.LogCaptureFixture) -> int:
    return sum("event=coordinator_peer_refused" in r.getMessage() for r in caplog.records)


def test_a_child_of_the_master_is_answered(socket_path: str,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="strongroom.node.rpc")
    reply = run_child(CLIENT, socket_path)
    assert reply.startswith("{"), reply
    assert '"ok": true' in reply and '"sealed"' in reply
    assert refusals(caplog) == 0


def test_a_grandchild_of_the_master_is_refused(socket_path: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """Same user, same machine, descended from the master: still not one of its workers
    (a process a worker spawned, or anything re-parented), so it gets nothing."""
    caplog.set_level(logging.WARNING, logger="strongroom.node.rpc")
    assert run_child(GRANDCHILD, CLIENT, socket_path) == "REFUSED"
    assert refusals(caplog) == 1


def test_the_master_itself_is_refused(socket_path: str,
                                      caplog: pytest.LogCaptureFixture) -> None:
    """The master is not its own child: only workers are let in."""
    caplog.set_level(logging.WARNING, logger="strongroom.node.rpc")
    namespace: dict[str, object] = {"__name__": "client"}
    exec(compile(CLIENT, "client", "exec"), namespace)  # noqa: S102 - our own text above
    ask = namespace["ask"]
    assert callable(ask)
    assert ask(socket_path) == "REFUSED"
    assert refusals(caplog) == 1
