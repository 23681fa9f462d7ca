"""Revoking a large token tree across real worker processes, with a crash mid-way.

A node on file storage with several workers. The parent of ``CHILDREN`` tokens is
revoked; from that answer on, every worker refuses every token of the tree (403),
while the tree is still in storage (the background job is held back: the node's
owner only looks for work every hour in the first run). The node is then run again
with a slow background job and its owner SIGKILLed mid-way through the deletion; a
third run finishes it, and the storage holds nothing of the tree. No sleeps: every
wait polls a condition with a deadline.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import requests

from strongroom.physical.file import FileBackend
from tests.support.ha import poll
from tests.support.servers import ServerProcess, file_config, process_alive, strongroom_server

WORKERS = 3
CHILDREN = 300
TOKENS = "sys/token/"


def start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interval: str, budget: str
          ) -> object:
    monkeypatch.setenv("STRONGROOM_TOKEN_WORK_INTERVAL", interval)
    monkeypatch.setenv("STRONGROOM_TOKEN_WORK_BUDGET", budget)
    return strongroom_server(tmp_path, file_config(workers=WORKERS))


def unseal(server: ServerProcess, key: str) -> None:
    reply = requests.put(server.url + "/v1/sys/unseal", json={"key": key}, timeout=10)
    assert reply.status_code == 200 and reply.json()["sealed"] is False, reply.text
    server.wait_for_workers(WORKERS)


def status_from_every_worker(server: ServerProcess, token: str) -> set[int]:
    """lookup-self with ``token`` on fresh connections until every worker answered;
    returns the statuses seen (strict: every answer counts)."""
    workers, seen, statuses = server.wait_for_workers(WORKERS), set(), set()

    def all_seen() -> bool:
        resp = requests.get(server.url + "/v1/auth/token/lookup-self", timeout=5,
                            headers={"X-Vault-Token": token, "Connection": "close"})
        statuses.add(resp.status_code)
        seen.add(int(resp.headers["X-Strongroom-Worker"]))
        return seen == workers

    poll(all_seen, 30, "every worker to answer")
    return statuses


def accessors(server: ServerProcess, root: str) -> set[str]:
    resp = requests.request("LIST", server.url + "/v1/auth/token/accessors", timeout=30,
                            headers={"X-Vault-Token": root})
    assert resp.status_code == 200, resp.text
    return set(resp.json()["data"]["keys"])


def test_revoked_tree_is_refused_everywhere_at_once_and_deleted_across_a_crash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Run 1: the owner's job is held back; the tombstone alone must refuse the tree.
    with start(tmp_path, monkeypatch, "3600", "2") as server:  # type: ignore[attr-defined]
        server.wait_for_workers(WORKERS)
        url = server.url + "/v1/"
        init = requests.put(url + "sys/init", json={"secret_shares": 1,
                                                     "secret_threshold": 1}, timeout=20).json()
        key, root = init["keys"][0], init["root_token"]
        unseal(server, key)
        s = requests.Session()
        parent = s.post(url + "auth/token/create", headers={"X-Vault-Token": root},
                        json={"policies": ["root"]}, timeout=10).json()["auth"]
        children = [s.post(url + "auth/token/create", json={"policies": ["default"]},
                           headers={"X-Vault-Token": parent["client_token"]},
                           timeout=10).json()["auth"] for _ in range(CHILDREN)]
        for child in children[:5]:
            assert status_from_every_worker(server, child["client_token"]) == {200}

        resp = s.post(url + "auth/token/revoke-self", timeout=30,
                      headers={"X-Vault-Token": parent["client_token"]})
        assert resp.status_code == 204, resp.text
        # From the very next request of each worker: refused, for every token.
        for child in children[:10]:
            assert status_from_every_worker(server, child["client_token"]) == {403}
        for child in children:
            assert requests.get(url + "auth/token/lookup-self", timeout=5, headers={
                "X-Vault-Token": child["client_token"]}).status_code == 403
        assert status_from_every_worker(server, parent["client_token"]) == {403}
        # ... while the tree is still in storage: the job has not run.
        doomed = {parent["accessor"], *(c["accessor"] for c in children)}
        assert doomed <= accessors(server, root)

    # Run 2: a slow job (a few tokens a second); the owner is killed mid-way.
    with start(tmp_path, monkeypatch, "0.2", "0.005") as server:  # type: ignore[attr-defined]
        unseal(server, key)
        poll(lambda: 0 < len(doomed & accessors(server, root)) < len(doomed), 60,
             "the background deletion to be part-way")
        pids = server.node_pids()
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        poll(lambda: not any(os.path.exists(f"/proc/{p}/status") and process_alive(p)
                             for p in pids), 20, "every process of the node to exit")
    left = FileBackend(tmp_path / "data").list(TOKENS + "revoking/")
    assert len(left) == 1, "the tombstone survives the crash"

    # Run 3: the next owner finishes it; nothing of the tree is left in storage.
    with start(tmp_path, monkeypatch, "0.2", "2") as server:  # type: ignore[attr-defined]
        unseal(server, key)
        remaining = [c for c in children if c["accessor"] in accessors(server, root)]
        for child in remaining[:3]:
            assert status_from_every_worker(server, child["client_token"]) == {403}
        poll(lambda: not doomed & accessors(server, root), 60, "the tree to be deleted")
        for child in children[:3]:
            assert status_from_every_worker(server, child["client_token"]) == {403}
    storage = FileBackend(tmp_path / "data")
    assert len(storage.list(TOKENS + "id/")) == 1  # the root token alone
    assert len(storage.list(TOKENS + "accessor/")) == 1
    assert storage.list(TOKENS + "parent/") == []
    assert storage.list(TOKENS + "revoking/") == []
