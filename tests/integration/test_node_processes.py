"""The processes of a node: owner (keys, HA, background work), arbiter, workers.

Real server processes. The owner is the process started (``server.proc``), the
gunicorn arbiter its one child, the workers the arbiter's children. Whatever
process dies, the node either recovers (a worker) or stops serving altogether (the
owner, the arbiter): never half-alive. No sleeps: every wait polls a condition
with a deadline.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.coordinator_client import CLIENT
from tests.support.ha import poll
from tests.support.servers import (
    ServerProcess,
    file_config,
    process_alive,
    strongroom_dev_server,
    strongroom_server,
)

WORKERS = 2
ROOT = {"X-Vault-Token": "root"}


alive = process_alive


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def init_and_unseal(server: ServerProcess) -> str:
    url = server.url + "/v1/"
    init = requests.put(url + "sys/init", json={"secret_shares": 1, "secret_threshold": 1},
                        timeout=20).json()
    reply = requests.put(url + "sys/unseal", json={"key": init["keys"][0]}, timeout=10)
    assert reply.status_code == 200 and reply.json()["sealed"] is False, reply.text
    token: str = init["root_token"]
    assert requests.post(url + "sys/mounts/secret", json={"type": "kv-v2"}, timeout=10,
                         headers={"X-Vault-Token": token}).status_code == 204
    return token


def every_worker_answers(server: ServerProcess, path: str, token: str) -> set[int]:
    workers = server.wait_for_workers(WORKERS)
    seen: set[int] = set()

    def all_seen() -> bool:
        resp = requests.get(server.url + path, timeout=5,
                            headers={"X-Vault-Token": token, "Connection": "close"})
        assert resp.status_code == 200, resp.text
        seen.add(int(resp.headers["X-Strongroom-Worker"]))
        return seen == workers

    poll(all_seen, 30, "every worker to answer")
    return workers


@pytest.fixture
def node(tmp_path: Path) -> Iterator[ServerProcess]:
    with strongroom_server(tmp_path, file_config(workers=WORKERS)) as server:
        server.wait_for_workers(WORKERS)
        yield server


def test_the_arbiter_runs_one_thread_and_the_owner_holds_the_node(node: ServerProcess) -> None:
    """Nothing is added to gunicorn's arbiter: it forks workers with one thread only."""
    token = init_and_unseal(node)
    every_worker_answers(node, "/v1/sys/health", token)
    arbiter = node.arbiter_pid()
    assert arbiter is not None
    assert threads(arbiter) == 1, os.listdir(f"/proc/{arbiter}/task")
    # The coordinator's socket server lives in the owner (threads), not in the arbiter.
    assert threads(node.proc.pid) > 1
    # A re-forked worker is forked by the same single thread.
    victim = min(node.worker_pids())
    os.kill(victim, signal.SIGKILL)
    poll(lambda: len(node.worker_pids() - {victim}) == WORKERS, 30, "a new worker")
    every_worker_answers(node, "/v1/sys/health", token)
    assert threads(arbiter) == 1


def ask_coordinator(socket_path: str) -> str:
    done = subprocess.run([sys.executable, "-c", CLIENT, socket_path], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_only_workers_may_talk_to_the_coordinator(node: ServerProcess) -> None:
    """Same user, same machine, the node's own socket: a process that is not one of the
    arbiter's children gets nothing."""
    sockets = list(Path(tempfile.gettempdir()).glob(f"strongroom-{node.proc.pid}-run-*/coord.sock"))
    assert len(sockets) == 1, sockets
    assert ask_coordinator(str(sockets[0])) == "REFUSED"
    log = (node.workdir / "server.log").read_text()
    assert "event=coordinator_peer_refused" in log
    # The workers are still answered.
    assert requests.get(node.url + "/v1/sys/seal-status", timeout=5).status_code == 200


def test_owner_killed_the_node_stops_serving(node: ServerProcess) -> None:
    """SIGKILL of the key holder: no worker goes on serving; every process exits."""
    token = init_and_unseal(node)
    every_worker_answers(node, "/v1/sys/health", token)
    pids = node.node_pids()
    assert len(pids) == 2 + WORKERS
    os.kill(node.proc.pid, signal.SIGKILL)
    node.proc.wait()

    def serves_nothing() -> bool:
        try:
            resp = requests.get(node.url + "/v1/secret/data/x", headers={
                "X-Vault-Token": token, "Connection": "close"}, timeout=2)
        except requests.ConnectionError:
            return True
        return resp.status_code == 503

    poll(serves_nothing, 5, "the node to answer 503 or refuse connections")
    poll(lambda: not any(alive(p) for p in pids), 15, "every process of the node to exit")


def test_arbiter_killed_the_owner_exits_non_zero(node: ServerProcess) -> None:
    """SIGKILL of the arbiter: the owner exits with a failure (systemd restarts the
    node) and the workers exit too."""
    init_and_unseal(node)
    arbiter = node.arbiter_pid()
    assert arbiter is not None
    workers = node.worker_pids()
    os.kill(arbiter, signal.SIGKILL)
    poll(lambda: node.proc.poll() is not None, 10, "the owner to exit")
    assert node.proc.returncode != 0
    poll(lambda: not any(alive(p) for p in workers), 15, "the workers to exit")
    runtime = list(Path(tempfile.gettempdir()).glob(f"strongroom-{node.proc.pid}-*"))
    assert runtime == [], "the owner removes its runtime directories"


def test_sigterm_stops_every_process_gracefully(tmp_path: Path) -> None:
    pid_file = tmp_path / "strongroom.pid"
    config = file_config(workers=WORKERS) + f'pid_file = "{pid_file}"\n'
    with strongroom_server(tmp_path, config) as server:
        server.wait_for_workers(WORKERS)
        init_and_unseal(server)
        assert pid_file.read_text().strip() == str(server.proc.pid)  # systemd's MainPID
        pids = server.node_pids()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) == 0
        poll(lambda: not any(alive(p) for p in pids), 15, "every process to exit")
        assert not pid_file.exists()
        assert not list(Path(tempfile.gettempdir()).glob(f"strongroom-{server.proc.pid}-*"))


def test_sighup_re_forks_the_workers_and_the_node_serves_on(node: ServerProcess) -> None:
    token = init_and_unseal(node)
    before = node.wait_for_workers(WORKERS)
    arbiter = node.arbiter_pid()
    node.proc.send_signal(signal.SIGHUP)
    poll(lambda: len(node.worker_pids()) == WORKERS and not node.worker_pids() & before,
             30, "new workers")
    assert node.arbiter_pid() == arbiter and node.proc.poll() is None
    every_worker_answers(node, "/v1/auth/token/lookup-self", token)


def test_dev_data_survives_a_worker_and_the_arbiter_holds_no_thread(tmp_path: Path) -> None:
    with strongroom_dev_server(tmp_path) as server:
        assert requests.post(server.url + "/v1/secret/data/keep", headers=ROOT, timeout=10,
                             json={"data": {"v": "kept"}}).status_code == 200
        (worker,) = server.wait_for_workers(1)
        os.kill(worker, signal.SIGKILL)
        poll(lambda: server.worker_pids() not in (set(), {worker}), 30, "a new worker")
        r = requests.get(server.url + "/v1/secret/data/keep", headers=ROOT, timeout=10)
        assert r.status_code == 200 and r.json()["data"]["data"] == {"v": "kept"}, r.text
        arbiter = server.arbiter_pid()
        assert arbiter is not None and threads(arbiter) == 1


def _pending(pid: int, sig: signal.Signals) -> bool:
    """Whether ``sig`` waits, undelivered, for process ``pid`` (it is stopped)."""
    fields = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    mask = int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)
    return bool(mask & (1 << (sig - 1)))


def test_requests_queued_when_the_node_stops_are_answered_not_reset(tmp_path: Path) -> None:
    """Clients that connected and sent a request just before SIGTERM get their answer.

    The worker is stopped (SIGSTOP) so that the connections wait in the kernel's
    accept queue, as they do when a busy worker is told to stop. Before: closing the
    listener reset them, a connection accepted in the tick before the close failed
    asyncio's Server._attach and was dropped, and one accepted with its request not
    yet read was closed by uvicorn's shutdown."""
    with strongroom_server(tmp_path, file_config(workers=1)) as server:
        (worker,) = server.wait_for_workers(1)
        os.kill(worker, signal.SIGSTOP)
        try:
            host, port = server.url.removeprefix("http://").split(":")
            clients = [socket.create_connection((host, int(port)), timeout=20)
                       for _ in range(20)]
            for client in clients:
                client.sendall(b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: x\r\n\r\n")
            server.proc.send_signal(signal.SIGTERM)
            poll(lambda: _pending(worker, signal.SIGTERM), 20, "the worker to be told to stop")
        finally:
            os.kill(worker, signal.SIGCONT)
        answers = []
        for client in clients:
            with client:
                try:
                    answers.append(client.recv(65536).split(b"\r\n", 1)[0])
                except ConnectionResetError:
                    answers.append(b"reset")
        assert answers == [b"HTTP/1.1 200 OK"] * 20
        assert server.proc.wait(20) == 0
