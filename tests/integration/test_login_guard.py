"""The login guard on a real node with several workers (userpass logins).

* Failures from one client count together whichever worker answers: spread over
  the workers, the failures past the free ones are each answered after their backoff
  (a per-worker count would let each worker grant its own free failures).
* While a client backs off, even the right password is refused, with the wrong
  password's status and text.
* Failures against one user from many clients back that user off.
* A missing user and a wrong password are indistinguishable: status, text, and the
  timing shape (both pay the bcrypt work; medians within a factor of two).

Each scenario uses its own loopback source address (127.0.0.x) as its client. The
module's node also checks that first logins of one user racing on every worker make
one identity entity.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from strongroom.auth.login_guard import FREE_FAILURES, window
from tests.support.servers import ServerProcess, file_config, strongroom_server

WORKERS = 3
FAILED = (400, {"errors": ["invalid username or password"]})


def login(url: str, user: str, password: str, source: str) -> tuple[int, Any, int, float]:
    """A login on a fresh connection from ``source``: status, body, worker pid, seconds."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=90, source_address=(source, 0))
    start = time.monotonic()
    try:
        conn.request("POST", f"/v1/auth/userpass/login/{user}",
                     body=json.dumps({"password": password}),
                     headers={"Content-Type": "application/json", "Connection": "close"})
        resp = conn.getresponse()
        raw = resp.read()
        took = time.monotonic() - start
        pid = int(resp.getheader("X-Strongroom-Worker") or 0)
    finally:
        conn.close()
    return resp.status, json.loads(raw) if raw else None, pid, took


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir: Path = tmp_path_factory.mktemp("guard")
    with strongroom_server(workdir, file_config(workers=WORKERS)) as srv:
        srv.wait_for_workers(WORKERS)
        init = requests.put(srv.url + "/v1/sys/init",
                            json={"secret_shares": 1, "secret_threshold": 1}, timeout=10).json()
        requests.put(srv.url + "/v1/sys/unseal", json={"key": init["keys"][0]}, timeout=10)
        token = {"X-Vault-Token": init["root_token"]}
        srv.root_token = init["root_token"]  # type: ignore[attr-defined]
        assert requests.post(srv.url + "/v1/sys/auth/userpass", json={"type": "userpass"},
                             headers=token, timeout=10).status_code == 204
        for user in ("alice", "bob", "carol"):
            resp = requests.post(srv.url + f"/v1/auth/userpass/users/{user}",
                                 json={"password": f"pw-{user}"}, headers=token, timeout=10)
            assert resp.status_code == 204, resp.text
        yield srv


def _connections_on_two_workers(url: str, source: str) -> list[http.client.HTTPConnection]:
    """Two kept-alive connections from ``source`` that two different workers accepted
    (each one's worker read from a health request: no login, nothing counted). Which
    worker accepts a connection is the kernel's choice; on a loaded machine five fresh
    connections in a row once all went to one worker."""
    host, port = url.removeprefix("http://").split(":")
    by_worker: dict[int, http.client.HTTPConnection] = {}
    spare: list[http.client.HTTPConnection] = []
    deadline = time.monotonic() + 30
    while len(by_worker) < 2:
        assert time.monotonic() < deadline, f"every connection went to {set(by_worker)}"
        conn = http.client.HTTPConnection(host, int(port), timeout=90,
                                          source_address=(source, 0))
        conn.request("GET", "/v1/sys/health")
        resp = conn.getresponse()
        resp.read()
        pid = int(resp.getheader("X-Strongroom-Worker") or 0)
        if pid in by_worker:
            spare.append(conn)  # kept open a while: the next one goes elsewhere
        else:
            by_worker[pid] = conn
    for conn in spare:
        conn.close()
    return list(by_worker.values())


def test_client_failures_count_across_workers(node: ServerProcess) -> None:
    client = "127.0.0.21"
    connections = _connections_on_two_workers(node.url, client)
    pids, took = set(), []
    try:
        # Different users, so only the client's count can slow them down; the
        # attempts alternate between two workers.
        for i in range(FREE_FAILURES + 2):
            conn = connections[i % 2]
            start = time.monotonic()
            conn.request("POST", f"/v1/auth/userpass/login/user{i}",
                         body=json.dumps({"password": "wrong"}),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            assert (resp.status, json.loads(resp.read())) == FAILED
            took.append(time.monotonic() - start)
            pids.add(int(resp.getheader("X-Strongroom-Worker") or 0))
    finally:
        for conn in connections:
            conn.close()
    assert len(pids) == 2
    # The failures past the free ones were answered after their backoff, whichever
    # worker took them.
    for n in (FREE_FAILURES + 1, FREE_FAILURES + 2):
        assert took[n - 1] >= window(n) - 0.05, (n, took)


def test_right_password_refused_while_backing_off(node: ServerProcess) -> None:
    client = "127.0.0.22"
    for i in range(FREE_FAILURES):
        assert login(node.url, f"nobody{i}", "wrong", client)[:2] == FAILED
    # The next failure opens a window; its own answer waits for it, in the background.
    slow: list[tuple[int, Any, int, float]] = []
    worker = threading.Thread(target=lambda: slow.append(
        login(node.url, "nobody-x", "wrong", client)))
    worker.start()
    refused = None
    for _ in range(50):
        status, body, pid, _seconds = login(node.url, "alice", "pw-alice", client)
        if status != 200:
            refused = (status, body)
            break
        if not worker.is_alive():
            break
    worker.join()
    assert slow and slow[0][:2] == FAILED
    assert refused == FAILED, "the right password was never refused during the backoff"
    # Once the window has passed (the slow answer came after it), the client may log in.
    assert login(node.url, "alice", "pw-alice", client)[0] == 200


def test_principal_failures_from_many_clients(node: ServerProcess) -> None:
    took = []
    for i in range(FREE_FAILURES + 1):
        status, body, _pid, seconds = login(node.url, "bob", "wrong", f"127.0.1.{i + 1}")
        assert (status, body) == FAILED
        took.append(seconds)
    assert took[-1] >= window(FREE_FAILURES + 1) - 0.05, took
    # A success (after the window) forgets bob's count: the next failure is free again.
    assert login(node.url, "bob", "pw-bob", "127.0.1.100")[0] == 200
    assert login(node.url, "bob", "wrong", "127.0.1.101")[3] < window(FREE_FAILURES + 1)


def test_missing_user_and_wrong_password_look_alike(node: ServerProcess) -> None:
    missing, wrong = [], []
    # Alternated, each from its own client (no backoff), so load affects both alike.
    for i in range(6):
        status, body, _pid, seconds = login(node.url, f"ghost{i}", "pw", f"127.0.2.{2 * i + 1}")
        assert (status, body) == FAILED
        missing.append(seconds)
        status, body, _pid, seconds = login(node.url, "carol", f"bad{i}", f"127.0.2.{2 * i + 2}")
        assert (status, body) == FAILED
        wrong.append(seconds)
        # carol's own count must not slow the sample down: a success clears it.
        if i % 2 == 1:
            assert login(node.url, "carol", "pw-carol", f"127.0.3.{i}")[0] == 200
    ratio = statistics.median(missing) / statistics.median(wrong)
    assert 0.5 < ratio < 2.0, (missing, wrong)


def test_racing_first_logins_make_one_entity(node: ServerProcess) -> None:
    root = {"X-Vault-Token": node.root_token}  # type: ignore[attr-defined]
    assert requests.post(node.url + "/v1/auth/userpass/users/racer", json={
        "password": "pw-racer"}, headers=root, timeout=10).status_code == 204
    results: list[tuple[int, Any, int, float]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        out = login(node.url, "racer", "pw-racer", f"127.0.4.{i + 1}")
        with lock:
            results.append(out)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(status == 200 for status, *_ in results), results
    entities = {body["auth"]["entity_id"] for _status, body, _pid, _s in results}
    assert len(entities) == 1 and "" not in entities
    assert len({pid for *_, pid, _s in results}) >= 2  # more than one worker took part
    listed = requests.request("LIST", node.url + "/v1/identity/entity/id", headers=root,
                              timeout=10).json()["data"]["keys"]
    assert entities <= set(listed)
    aliases = requests.request("LIST", node.url + "/v1/identity/entity-alias/id",
                               headers=root, timeout=10).json()["data"]["key_info"]
    assert sum(1 for a in aliases.values() if a["name"] == "racer") == 1
