"""AppRole on a real node with several gunicorn workers (file storage): concurrent
logins with one limited-use SecretID, spread over every worker, spend each use once
(node_lock across processes), and a role changed through one worker is what every
other worker logs in with on its next request. The race runs last: its refused
logins put this client's address in the login guard's backoff."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.servers import ServerProcess, file_config, strongroom_server

WORKERS = 3
# A few more attempts than uses: every failure from this address feeds the login
# guard's backoff (whose waits the server serves before answering).
USES = 10
ATTEMPTS = 16


def call(server: ServerProcess, method: str, path: str, token: str | None = None,
         body: Any = None) -> requests.Response:
    headers = {"Connection": "close"}  # a fresh connection: any worker may take it
    if token:
        headers["X-Vault-Token"] = token
    return requests.request(method, f"{server.url}/v1/{path}", json=body, headers=headers,
                            timeout=30)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    with strongroom_server(tmp_path_factory.mktemp("approle"),
                           file_config(workers=WORKERS)) as srv:
        srv.wait_for_workers(WORKERS)
        init = call(srv, "PUT", "sys/init", body={"secret_shares": 1, "secret_threshold": 1})
        assert init.status_code == 200, init.text
        keys = init.json()["keys"]
        assert call(srv, "PUT", "sys/unseal", body={"key": keys[0]}).status_code == 200
        root = init.json()["root_token"]
        resp = call(srv, "POST", "sys/auth/approle", root, {"type": "approle"})
        assert resp.status_code == 204, resp.text
        yield srv, root


def test_role_change_seen_by_every_worker(node: tuple[ServerProcess, str]) -> None:
    srv, root = node
    assert call(srv, "POST", "auth/approle/role/moving",
                root, {"token_ttl": 60}).status_code == 204
    role_id = call(srv, "GET", "auth/approle/role/moving/role-id", root).json()["data"][
        "role_id"]
    secret_id = call(srv, "POST", "auth/approle/role/moving/secret-id", root).json()["data"][
        "secret_id"]
    assert call(srv, "POST", "auth/approle/role/moving", root,
                {"token_ttl": 90}).status_code == 204
    seen: set[str] = set()
    for _ in range(30 * WORKERS):
        resp = call(srv, "POST", "auth/approle/login",
                    body={"role_id": role_id, "secret_id": secret_id})
        assert resp.status_code == 200, resp.text
        assert resp.json()["auth"]["lease_duration"] == 90
        seen.add(resp.headers["X-Strongroom-Worker"])
        if len(seen) == WORKERS:
            break
    assert len(seen) == WORKERS


def test_concurrent_logins_spend_each_use_once(node: tuple[ServerProcess, str]) -> None:
    srv, root = node
    assert call(srv, "POST", "auth/approle/role/race", root,
                {"secret_id_num_uses": USES, "token_ttl": 60}).status_code == 204
    role_id = call(srv, "GET", "auth/approle/role/race/role-id", root).json()["data"][
        "role_id"]
    secret_id = call(srv, "POST", "auth/approle/role/race/secret-id", root).json()["data"][
        "secret_id"]
    start = threading.Barrier(ATTEMPTS)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def attempt() -> None:
        start.wait()
        resp = call(srv, "POST", "auth/approle/login",
                    body={"role_id": role_id, "secret_id": secret_id})
        with lock:
            results.append((resp.status_code, resp.headers.get("X-Strongroom-Worker", "")))

    threads = [threading.Thread(target=attempt) for _ in range(ATTEMPTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [r for r in results if r[0] == 200]
    assert len({worker for _, worker in results}) > 1, "one worker took every login"
    assert {status for status, _ in results} <= {200, 400}
    # Every use spent shows as one token, never more: what is left plus what was
    # granted is the SecretID's allowance (the login guard may refuse some attempts
    # before they spend anything, so the wins alone may fall short of USES).
    left = call(srv, "POST", "auth/approle/role/race/secret-id/lookup", root,
                {"secret_id": secret_id})
    remaining = left.json()["data"]["secret_id_num_uses"] if left.status_code == 200 else 0
    assert 1 <= len(wins) <= USES
    assert len(wins) + remaining == USES, (len(wins), remaining)
