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
from tests.support.coordinator_client import CLIENT

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


def test_only_children_of_the_workers_parent_are_answered(
        caplog: pytest.LogCaptureFixture) -> None:
    """On a node the workers' parent is the gunicorn arbiter, not the serving process
    (the owner): a child of the owner that is not a worker is refused, a child of the
    arbiter is answered."""
    caplog.set_level(logging.WARNING, logger="strongroom.node.rpc")
    # Stands for the arbiter: a process of ours that runs CLIENT in a child when told to.
    arbiter = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys\n"
         "path = sys.stdin.readline().strip()\n"
         "sys.exit(subprocess.run([sys.executable, '-c', sys.argv[1], path]).returncode)",
         CLIENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    with tempfile.TemporaryDirectory(prefix="sr-rpc-") as directory:
        path = str(Path(directory) / "coord.sock")
        server = CoordinatorServer(local_coordinator(dev_config(), InmemBackend()), path,
                                   workers_parent=arbiter.pid)
        server.start()
        try:
            assert run_child(CLIENT, path) == "REFUSED"  # the owner's own child
            assert refusals(caplog) == 1
            out, _ = arbiter.communicate(path + "\n", timeout=60)
            assert '"ok": true' in out, out  # the "arbiter"'s child: a worker
            assert refusals(caplog) == 1
        finally:
            server.close()
            arbiter.kill() if arbiter.poll() is None else None
