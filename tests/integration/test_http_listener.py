"""The HTTP listener against real server processes: bodies, slow clients, limits, logs.

Each test runs `strongroom server` as an operator would and talks to it over
sockets, so what is asserted is what a client (or an attacker) sees.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.support.ha import poll
from tests.support.servers import (
    ServerProcess,
    running,
    strongroom_dev_server,
    strongroom_env,
    strongroom_server,
)

ROOT = {"X-Vault-Token": "root"}
WORKER_CLASSES = ["uvicorn", "gthread"]


def chunked(payload: bytes, size: int = 7) -> Iterator[bytes]:
    """The body in small pieces: requests sends a generator with Transfer-Encoding: chunked."""
    for i in range(0, len(payload), size):
        yield payload[i:i + size]


@contextmanager
def dev_server(tmp_path: Path, worker: str = "uvicorn") -> Iterator[ServerProcess]:
    port = _port()
    env = strongroom_env() | {"STRONGROOM_HTTP_WORKER": worker}
    args = [sys.executable, "-m", "strongroom.cli.main", "server", "-dev",
            "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}"]
    with running(args, tmp_path, "dev.log", f"http://127.0.0.1:{port}", env=env) as server:
        yield server


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """True once the server closed (or reset) the connection, within ``timeout``."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def _answers_health(sock: socket.socket) -> bool:
    """True if a keep-alive health request on ``sock`` is answered; False if refused."""
    sock.settimeout(10)
    try:
        sock.sendall(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n")
        return sock.recv(4096).startswith(b"HTTP/1.1 ")
    except (ConnectionResetError, BrokenPipeError):
        return False


def _fresh_connection_answered(server: ServerProcess) -> bool:
    with socket.create_connection(_host_port(server.url), timeout=5) as sock:
        return _answers_health(sock)


# -- bodies -----------------------------------------------------------------


@pytest.mark.parametrize("worker", WORKER_CLASSES)
def test_a_chunked_body_is_read_not_taken_as_empty(tmp_path: Path, worker: str) -> None:
    with dev_server(tmp_path, worker) as server:
        body = b'{"policies":["kvread"],"ttl":"60s","num_uses":1}'
        r = requests.post(server.url + "/v1/auth/token/create", headers=ROOT,
                          data=chunked(body), timeout=10)
        assert r.request.headers.get("Transfer-Encoding") == "chunked"
        assert r.status_code == 200, r.text
        auth = r.json()["auth"]
        assert auth["policies"] == ["default", "kvread"]  # not root
        assert auth["lease_duration"] == 60
        assert auth["num_uses"] == 1

        r = requests.post(server.url + "/v1/secret/data/app", headers=ROOT,
                          data=chunked(b'{"data":{"password":"s3cret"}}'), timeout=10)
        assert r.status_code == 200, r.text
        r = requests.get(server.url + "/v1/secret/data/app", headers=ROOT, timeout=10)
        assert r.json()["data"]["data"] == {"password": "s3cret"}


@pytest.mark.parametrize("worker", WORKER_CLASSES)
def test_an_oversized_body_without_content_length_is_413(tmp_path: Path, worker: str) -> None:
    config = (
        'storage "file" {{\n  path = "{workdir}/data"\n}}\n'
        'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n'
        '  max_request_size = 4096\n}}\n'
        "disable_mlock = true\nworkers = 1\n"
    )
    with strongroom_server(tmp_path, config) as server:
        token = _init_unseal(server)
        headers = {"X-Vault-Token": token}
        requests.post(server.url + "/v1/sys/mounts/secret", headers=headers,
                      json={"type": "kv", "options": {"version": "2"}}, timeout=10)
        ok = requests.post(server.url + "/v1/secret/data/big", headers=headers,
                           json={"data": {"v": "small"}}, timeout=10)
        assert ok.status_code == 200, ok.text
        big = b'{"data":{"v":"' + b"x" * 8192 + b'"}}'
        r = requests.post(server.url + "/v1/secret/data/big", headers=headers,
                          data=chunked(big, 1024), timeout=10)
        assert r.status_code == 413
        assert r.json() == {"errors": ["http: request body too large"]}
        kept = requests.get(server.url + "/v1/secret/data/big", headers=headers, timeout=10)
        assert kept.json()["data"]["data"] == {"v": "small"}


def _init_unseal(server: ServerProcess) -> str:
    init = requests.post(server.url + "/v1/sys/init",
                         json={"secret_shares": 1, "secret_threshold": 1}, timeout=30).json()
    requests.post(server.url + "/v1/sys/unseal", json={"key": init["keys"][0]}, timeout=30)
    deadline = time.monotonic() + 20
    while requests.get(server.url + "/v1/sys/health", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "node did not become active"
        time.sleep(0.05)
    return str(init["root_token"])


# -- slow and idle clients ----------------------------------------------------


def open_slow_headers(url: str, count: int) -> list[socket.socket]:
    """Connections that have sent a request line and one header, and nothing more."""
    socks = []
    for _ in range(count):
        s = socket.create_connection(_host_port(url), timeout=5)
        s.sendall(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    return socks


def test_many_slow_header_clients_do_not_stop_service(tmp_path: Path) -> None:
    """500 clients stalled mid-headers: everyone else is still served (gthread served 0)."""
    with dev_server(tmp_path) as server:
        slow = open_slow_headers(server.url, 500)
        try:
            with requests.Session() as s:
                s.headers.update(ROOT)
                for i in range(100):
                    r = s.get(server.url + "/v1/sys/health", timeout=5)
                    assert r.status_code == 200, f"request {i}: {r.status_code}"
                # New connections too, not only a kept-alive one.
                for _ in range(20):
                    r = requests.get(server.url + "/v1/sys/health", timeout=5)
                    assert r.status_code == 200
        finally:
            for sock in slow:
                sock.close()


TIMEOUTS_CONFIG = (
    'storage "file" {{\n  path = "{workdir}/data"\n}}\n'
    'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n'
    '  http_read_header_timeout = "1s"\n  http_read_timeout = "2s"\n'
    '  http_idle_timeout = "1s"\n  max_connections = 40\n}}\n'
    "disable_mlock = true\nworkers = 1\n"
)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A node whose listener has short timeouts and a small connection bound."""
    with strongroom_server(tmp_path_factory.mktemp("limited"), TIMEOUTS_CONFIG) as server:
        yield server


def test_headers_not_completed_in_time_are_closed(limited: ServerProcess) -> None:
    slow = open_slow_headers(limited.url, 10)
    # The server, not the client, ends them: well within a generous bound.
    assert all(closed_by_server(s, timeout=15) for s in slow)
    for s in slow:
        s.close()
    assert requests.get(limited.url + "/v1/sys/health", timeout=5).status_code == 501


def test_a_connection_that_sends_nothing_is_closed(limited: ServerProcess) -> None:
    s = socket.create_connection(_host_port(limited.url), timeout=5)
    with s:
        assert closed_by_server(s, timeout=15)


def test_a_body_not_completed_in_time_is_closed(limited: ServerProcess) -> None:
    s = socket.create_connection(_host_port(limited.url), timeout=5)
    with s:
        s.sendall(b"POST /v1/sys/init HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        assert closed_by_server(s, timeout=15)
    # The partial body changed nothing.
    assert requests.get(limited.url + "/v1/sys/init", timeout=5).json() == {"initialized": False}


def test_an_idle_kept_alive_connection_is_closed(limited: ServerProcess) -> None:
    s = socket.create_connection(_host_port(limited.url), timeout=5)
    with s:
        s.sendall(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 501")
        assert closed_by_server(s, timeout=15)


def test_connections_past_the_bound_are_refused_and_the_rest_served(
        limited: ServerProcess) -> None:
    # Kept-alive idle clients hold slots; the bound is 40 for the node (one worker).
    held = []
    for _ in range(40):
        s = socket.create_connection(_host_port(limited.url), timeout=5)
        held.append(s)
    try:
        extra = socket.create_connection(_host_port(limited.url), timeout=5)
        with extra:
            assert closed_by_server(extra, timeout=5)
    finally:
        for s in held:
            s.close()
    # Slots come back as connections close.
    deadline = time.monotonic() + 15
    while True:
        try:
            if requests.get(limited.url + "/v1/sys/health", timeout=5).status_code == 501:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "service did not come back after the clients left"
        time.sleep(0.05)


# -- logs ------------------------------------------------------------------------

MALFORMED = [
    b"GET /v1/sys/health?token=hvs.LEAKCANARY1 HTTP/1.1 junk\r\n\r\n",
    b"GET /v1/x?t=hvs.LEAKCANARY2\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"BAD\r\nX-Vault-Token: hvs.LEAKCANARY3\r\n\r\n",
    b"GET /v1/sys/health HTTP/1.1\r\nX-Vault-Token hvs.LEAKCANARY4\r\n\r\n",
    b"GET /v1/sys/health HTTP/9.9\r\nX-Vault-Token: hvs.LEAKCANARY5\r\n\r\n",
]


@pytest.mark.parametrize("worker", WORKER_CLASSES)
def test_malformed_requests_are_answered_400_and_not_logged(tmp_path: Path, worker: str) -> None:
    with dev_server(tmp_path, worker) as server:
        for raw in MALFORMED:
            s = socket.create_connection(_host_port(server.url), timeout=5)
            with s:
                s.sendall(raw)
                s.settimeout(5)
                try:
                    answer = s.recv(65536)
                except (ConnectionResetError, TimeoutError):
                    answer = b""
                # Refused as bad input (400; 505 for an unknown HTTP version), never a 500.
                assert not answer or answer[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 505"), \
                    answer[:80]
        # A request after them proves the server read (and logged) them all.
        assert requests.get(server.url + "/v1/sys/health", timeout=5).status_code == 200
        server.stop()
        log = (tmp_path / "dev.log").read_bytes()
        assert b"LEAKCANARY" not in log


# -- dev mode and leftovers -------------------------------------------------------


def test_dev_data_survives_the_death_of_its_worker(tmp_path: Path) -> None:
    with strongroom_dev_server(tmp_path) as server:
        r = requests.post(server.url + "/v1/secret/data/keep", headers=ROOT,
                          json={"data": {"v": "kept"}}, timeout=10)
        assert r.status_code == 200
        (worker,) = server.wait_for_workers(1)
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while (pids := server.worker_pids()) in (set(), {worker}):
            assert time.monotonic() < deadline, "no new worker"
            time.sleep(0.05)
        r = requests.get(server.url + "/v1/secret/data/keep", headers=ROOT, timeout=10)
        assert r.status_code == 200, r.text
        assert r.headers["X-Strongroom-Worker"] in {str(p) for p in pids}
        assert r.json()["data"]["data"] == {"v": "kept"}


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        pid -= 1


def test_a_crashed_nodes_leftovers_are_removed_at_start(tmp_path: Path) -> None:
    stale = Path(tempfile.gettempdir()) / f"strongroom-{_dead_pid()}-run-test1234"
    stale.mkdir(mode=0o700)
    (stale / "coord.sock").write_text("")
    live = Path(tempfile.gettempdir()) / f"strongroom-{os.getpid()}-run-test1234"
    live.mkdir(mode=0o700)
    data = tmp_path / "data"
    data.mkdir()
    (data / "+tmp-0123456789abcdef").write_bytes(b"half a write")
    config = (
        'storage "file" {{\n  path = "{workdir}/data"\n}}\n'
        'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
        "disable_mlock = true\nworkers = 1\n"
    )
    try:
        with strongroom_server(tmp_path, config) as server:
            assert not stale.exists()
            assert live.exists()  # this process is alive: not a leftover
            assert not (data / "+tmp-0123456789abcdef").exists()
            master = server.proc.pid
            own = [p for p in Path(tempfile.gettempdir()).glob(f"strongroom-{master}-*")]
            assert own, "the node's runtime directory is named after its master"
            server.proc.kill()
            server.proc.wait()
        # The SIGKILLed master's directory is removed by the next start.
        with strongroom_server(tmp_path, config):
            assert not any(p.exists() for p in own)
    finally:
        live.rmdir()


def test_pipelined_requests_are_all_answered_in_order(limited: ServerProcess) -> None:
    s = socket.create_connection(_host_port(limited.url), timeout=5)
    with s:
        s.sendall(b"".join(b"GET /v1/sys/%s HTTP/1.1\r\nHost: x\r\n\r\n" % path
                           for path in (b"health", b"seal-status", b"health")))
        data = b""
        while data.count(b"HTTP/1.1 ") < 3:
            chunk = s.recv(65536)
            assert chunk, f"closed after {data.count(b'HTTP/1.1 ')} answers"
            data += chunk
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", data) == [b"501", b"200", b"501"]


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_json_memory_bomb_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    """30 MB of empty objects, no token: parsed, it was ten million dicts (~1 GB, ~20 s on
    the loop) before the token was even looked at."""
    with dev_server(tmp_path) as server:
        (worker,) = server.wait_for_workers(1)
        before = _peak_rss_kib(worker)
        bomb = b'{"a":[' + b"{}," * 10_000_000 + b"{}]}"
        r = requests.post(server.url + "/v1/secret/data/x", data=bomb, timeout=60)
        assert r.status_code == 400
        assert "exceeded maximum estimated memory limits" in r.json()["errors"][0]
        # The body itself (30 MB) is read; nothing close to its parse is ever built.
        assert _peak_rss_kib(worker) - before < 200_000
        # A large body of real data is still accepted.
        big = b"{" + b",".join(b'"k%d":"%s"' % (i, b"x" * 1000) for i in range(1500)) + b"}"
        r = requests.post(server.url + "/v1/cubbyhole/big", data=big, headers=ROOT,
                          timeout=60)
        assert r.status_code == 204, r.text


def test_the_connection_bound_is_the_nodes_not_each_workers(tmp_path: Path) -> None:
    """Two workers, a bound of 30: the kernel deals connections out unevenly, and a
    per-worker share (15 each) refused clients while the node held fewer than 30."""
    config = TIMEOUTS_CONFIG.replace("max_connections = 40", "max_connections = 30") \
        .replace("workers = 1", "workers = 2").replace('"1s"', '"30s"').replace('"2s"', '"30s"')
    with strongroom_server(tmp_path, config) as server:
        server.wait_for_workers(2)
        held = [socket.create_connection(_host_port(server.url), timeout=5) for _ in range(28)]
        try:
            # Each served on a new connection: at most 29 are open at any time.
            for _ in range(10):
                r = requests.get(server.url + "/v1/sys/health", timeout=5,
                                 headers={"Connection": "close"})
                assert r.status_code == 501
            # Three more: the node holds 30. Which one is refused depends on which worker
            # counts its connection first (a worker may accept the 29th, then count it
            # after the other counted the 31st). A worker that has not yet seen the last
            # close above may refuse one more: never more than 30 are served.
            held += [socket.create_connection(_host_port(server.url), timeout=5)
                     for _ in range(3)]
            answered = [_answers_health(s) for s in held]
            assert answered.count(True) in (29, 30), answered
            # A place freed is a place taken again (once the worker has seen the close).
            held.pop(answered.index(False)).close()
            held.pop().close()
            poll(lambda: _fresh_connection_answered(server), 10, "the freed place")
        finally:
            for s in held:
                s.close()
