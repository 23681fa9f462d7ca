"""Token leases in real server processes (file storage, several workers): an expired
token is revoked by the node's owner without any request presenting it, exactly once,
and leases survive a restart (the restarted owner restores and expires them).

Leases are watched with ``LIST sys/leases/lookup/<prefix>``, which reads lease entries
only (never the tokens, so nothing is revoked "on sight" by the test itself).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.ha import poll
from tests.support.servers import ServerProcess, file_config, strongroom_server

WORKERS = 3
TIMEOUT = 10


@pytest.fixture(autouse=True)
def fast_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRONGROOM_LEASE_EXPIRY_INTERVAL", "0.2")


def call(server: ServerProcess, method: str, path: str, token: str,
         body: Any = None) -> requests.Response:
    # A fresh connection each time: any worker may answer.
    return requests.request(method, f"{server.url}/v1/{path}", json=body, timeout=TIMEOUT,
                            headers={"X-Vault-Token": token, "Connection": "close"})


def start(workdir: Path) -> Iterator[ServerProcess]:
    with strongroom_server(workdir, file_config(workers=WORKERS)) as server:
        server.wait_for_workers(WORKERS)
        yield server


def unseal(server: ServerProcess, keys: list[str]) -> None:
    for key in keys:
        resp = requests.put(server.url + "/v1/sys/unseal", json={"key": key}, timeout=TIMEOUT,
                            headers={"Connection": "close"})
        assert resp.status_code == 200, resp.text


def leases(server: ServerProcess, token: str, prefix: str) -> list[str]:
    resp = call(server, "LIST", "sys/leases/lookup/" + prefix, token)
    if resp.status_code == 404:
        return []
    assert resp.status_code == 200, resp.text
    return [prefix + key for key in resp.json()["data"]["keys"]]


def test_expired_tokens_are_revoked_once_without_a_request(tmp_path: Path) -> None:
    gen = start(tmp_path)
    server = next(gen)
    try:
        init = requests.put(server.url + "/v1/sys/init", timeout=TIMEOUT,
                            json={"secret_shares": 1, "secret_threshold": 1}).json()
        root = init["root_token"]
        unseal(server, init["keys"])
        made = [call(server, "POST", "auth/token/create", root,
                     {"ttl": "2s", "policies": ["default"]}).json()["auth"]
                for _ in range(12)]
        keeper = call(server, "POST", "auth/token/create", root,
                      {"ttl": "1h", "policies": ["default"]}).json()["auth"]
        ids = leases(server, root, "auth/token/create/")
        assert len(ids) == 13
        poll(lambda: len(leases(server, root, "auth/token/create/")) == 1, 30,
             "the expired tokens' leases to go")
        accessors = call(server, "LIST", "auth/token/accessors", root).json()["data"]["keys"]
        assert not {a["accessor"] for a in made} & set(accessors)
        assert keeper["accessor"] in accessors
        # Exactly one revocation per lease, by the owner (one process), none by workers.
        log = (tmp_path / "server.log").read_text()
        revoked = re.findall(r"\[(\d+)\] \[INFO\] strongroom\.core\.expiration "
                             r"event=lease_revoked lease_id=(\S+) reason=expired", log)
        by_lease: dict[str, int] = {}
        for _pid, lease_id in revoked:
            by_lease[lease_id] = by_lease.get(lease_id, 0) + 1
        expired = set(ids) - set(leases(server, root, "auth/token/create/"))
        assert by_lease == dict.fromkeys(expired, 1)
        assert {pid for pid, _ in revoked} == {str(server.proc.pid)}
        for token in made:
            assert token["client_token"] not in log
    finally:
        gen.close()


def test_leases_survive_a_restart_and_expire_after_it(tmp_path: Path) -> None:
    gen = start(tmp_path)
    server = next(gen)
    init = requests.put(server.url + "/v1/sys/init", timeout=TIMEOUT,
                        json={"secret_shares": 1, "secret_threshold": 1}).json()
    root = init["root_token"]
    unseal(server, init["keys"])
    short = call(server, "POST", "auth/token/create", root, {"ttl": "6s"}).json()["auth"]
    long = call(server, "POST", "auth/token/create", root, {"ttl": "1h"}).json()["auth"]
    before = leases(server, root, "auth/token/create/")
    assert len(before) == 2
    gen.close()  # SIGTERM: the node stops; its leases are on disk

    gen = start(tmp_path)
    server = next(gen)
    try:
        unseal(server, init["keys"])
        assert sorted(leases(server, root, "auth/token/create/")) == sorted(before)
        poll(lambda: len(leases(server, root, "auth/token/create/")) == 1, 30,
             "the short token's lease to expire after the restart")
        [left] = leases(server, root, "auth/token/create/")
        data = call(server, "PUT", "sys/leases/lookup", root, {"lease_id": left}).json()["data"]
        assert data["renewable"] is True and data["ttl"] > 3000
        assert call(server, "GET", "auth/token/lookup-self",
                    long["client_token"]).status_code == 200
        assert call(server, "GET", "auth/token/lookup-self",
                    short["client_token"]).status_code == 403
    finally:
        gen.close()
