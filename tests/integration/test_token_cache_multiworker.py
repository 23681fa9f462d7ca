"""The per-worker cache of decoded token entries, across real worker processes.

Every worker first serves the token (so each has it cached); then a change goes through
one worker, and the next answer of every worker must already reflect it (strict: one
stale answer from any worker fails, no retrying until a cache expires).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.test_multiworker import CONFIG, WORKERS, every_worker, init, unseal
from tests.support.servers import ServerProcess, strongroom_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with strongroom_server(tmp_path, CONFIG) as srv:
        srv.wait_for_workers(WORKERS)
        yield srv


def _root(server: ServerProcess) -> str:
    result = init(server)
    unseal(server, result["keys"][:2])  # type: ignore[index]
    return str(result["root_token"])


def _create(server: ServerProcess, root: str, **body: object) -> str:
    resp = requests.post(server.url + "/v1/auth/token/create", json=body, timeout=10,
                         headers={"X-Vault-Token": root, "Connection": "close"})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["auth"]["client_token"])


def test_a_revoked_token_is_refused_by_every_worker_at_once(server: ServerProcess) -> None:
    root = _root(server)
    token = _create(server, root, policies=["default"])
    every_worker(server, lambda r: r.status_code == 200, "/v1/auth/token/lookup-self",
                 token=token)  # cached in every worker
    resp = requests.post(server.url + "/v1/auth/token/revoke-self", timeout=10,
                         headers={"X-Vault-Token": token, "Connection": "close"})
    assert resp.status_code == 204
    every_worker(server, lambda r: r.status_code == 403, "/v1/auth/token/lookup-self",
                 token=token)


def test_a_renewal_through_one_worker_is_seen_by_every_worker(server: ServerProcess) -> None:
    root = _root(server)
    token = _create(server, root, policies=["default"], ttl="1h", renewable=True)
    every_worker(server, lambda r: r.status_code == 200 and r.json()["data"]["ttl"] <= 3600,
                 "/v1/auth/token/lookup-self", token=token)
    resp = requests.post(server.url + "/v1/auth/token/renew-self", timeout=10,
                         json={"increment": "5h"},
                         headers={"X-Vault-Token": token, "Connection": "close"})
    assert resp.status_code == 200, resp.text
    every_worker(server, lambda r: r.status_code == 200 and r.json()["data"]["ttl"] > 3600,
                 "/v1/auth/token/lookup-self", token=token)


def test_a_parent_revoked_takes_its_cached_children_in_every_worker(
        server: ServerProcess) -> None:
    root = _root(server)
    parent = _create(server, root, policies=["root"])
    child = _create(server, parent, policies=["default"])
    every_worker(server, lambda r: r.status_code == 200, "/v1/auth/token/lookup-self",
                 token=child)
    resp = requests.post(server.url + "/v1/auth/token/revoke", json={"token": parent},
                         timeout=10, headers={"X-Vault-Token": root, "Connection": "close"})
    assert resp.status_code == 204
    every_worker(server, lambda r: r.status_code == 403, "/v1/auth/token/lookup-self",
                 token=child)
