"""Transit keys across gunicorn workers: each worker caches decoded key rings, and a
change made through one worker (rotate, config, trim, delete, cache-config) must hold in
every worker from its very next request. Concurrent rotations through different workers
lose none (node_lock around each ring's read-modify-write).

As tests/integration/test_multiworker.py: the answering worker is read from the debug
header X-Strongroom-Worker; "at once" is counted in requests (each worker's first answer
after the change), never in seconds.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.test_multiworker import init, unseal
from tests.support.servers import ServerProcess, file_config, strongroom_server

WORKERS = 3
MAX_REQUESTS = 100 * WORKERS


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    with strongroom_server(tmp_path, file_config(workers=WORKERS)) as srv:
        srv.wait_for_workers(WORKERS)
        result = init(srv)
        unseal(srv, result["keys"][:2])  # type: ignore[index]
        token = str(result["root_token"])
        resp = call(srv, token, "POST", "sys/mounts/transit", {"type": "transit"})
        assert resp.status_code == 204, resp.text
        yield srv, token


def call(server: ServerProcess, token: str, method: str, path: str,
         body: Any = None) -> requests.Response:
    """One request on its own connection, so the kernel may hand it to any worker."""
    return requests.request(method, f"{server.url}/v1/{path}", json=body, timeout=30,
                            headers={"X-Vault-Token": token, "Connection": "close"})


def every_worker(server: ServerProcess, token: str, method: str, path: str, body: Any,
                 check: Callable[[requests.Response], bool]) -> set[int]:
    """Send until each worker answered; EVERY answer (the first of each worker after the
    change included) must pass ``check``."""
    workers = server.wait_for_workers(WORKERS)
    seen: set[int] = set()
    for _ in range(MAX_REQUESTS):
        resp = call(server, token, method, path, body)
        pid = int(resp.headers["X-Strongroom-Worker"])
        assert check(resp), f"worker {pid} answered {resp.status_code} {resp.text}"
        seen.add(pid)
        if seen >= workers:
            return seen
    raise AssertionError(f"workers {workers - seen} never answered in {MAX_REQUESTS} requests")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def encrypted_with(version: int) -> Callable[[requests.Response], bool]:
    def check(resp: requests.Response) -> bool:
        return resp.status_code == 200 and resp.json()["data"]["ciphertext"].startswith(
            f"vault:v{version}:")
    return check


def test_changes_reach_every_worker_at_once(server: tuple[ServerProcess, str]) -> None:
    srv, token = server
    assert call(srv, token, "POST", "transit/keys/k").status_code == 200
    plain = {"plaintext": b64(b"payload")}
    # Every worker has the ring cached (and its cipher object) before each change.
    every_worker(srv, token, "POST", "transit/encrypt/k", plain, encrypted_with(1))
    old = call(srv, token, "POST", "transit/encrypt/k", plain).json()["data"]["ciphertext"]

    assert call(srv, token, "POST", "transit/keys/k/rotate").status_code == 200
    every_worker(srv, token, "POST", "transit/encrypt/k", plain, encrypted_with(2))

    resp = call(srv, token, "POST", "transit/keys/k/config", {"min_decryption_version": 2})
    assert resp.status_code == 200
    every_worker(srv, token, "POST", "transit/decrypt/k", {"ciphertext": old},
                 lambda r: r.status_code == 400 and r.json()["errors"] == [
                     "ciphertext or signature version is disallowed by policy (too old)"])
    resp = call(srv, token, "POST", "transit/keys/k/config", {"min_decryption_version": 1})
    every_worker(srv, token, "POST", "transit/decrypt/k", {"ciphertext": old},
                 lambda r: r.status_code == 200 and r.json()["data"] == plain)

    resp = call(srv, token, "POST", "transit/keys/k/config", {"min_encryption_version": 2,
                                                              "min_decryption_version": 2})
    assert call(srv, token, "POST", "transit/keys/k/trim",
                {"min_available_version": 2}).status_code == 200
    every_worker(srv, token, "GET", "transit/keys/k", None,
                 lambda r: r.status_code == 200 and sorted(r.json()["data"]["keys"]) == ["2"]
                 and r.json()["data"]["min_available_version"] == 2)

    assert call(srv, token, "POST", "transit/cache-config", {"size": 25}).status_code == 200
    every_worker(srv, token, "GET", "transit/cache-config", None,
                 lambda r: r.status_code == 200 and r.json()["data"] == {"size": 25})

    call(srv, token, "POST", "transit/keys/k/config", {"deletion_allowed": True})
    assert call(srv, token, "DELETE", "transit/keys/k").status_code == 204
    every_worker(srv, token, "POST", "transit/decrypt/k", {"ciphertext": old},
                 lambda r: r.status_code == 400 and r.json()["errors"] == [
                     "encryption key not found"])


def test_concurrent_rotations_lose_none(server: tuple[ServerProcess, str]) -> None:
    srv, token = server
    assert call(srv, token, "POST", "transit/keys/busy").status_code == 200

    def rotate(_: int) -> int:
        return call(srv, token, "POST", "transit/keys/busy/rotate").status_code

    def encrypt(_: int) -> int:
        return call(srv, token, "POST", "transit/encrypt/busy",
                    {"plaintext": b64(b"x")}).status_code

    with ThreadPoolExecutor(12) as pool:
        rotations = pool.map(rotate, range(24))
        encryptions = pool.map(encrypt, range(24))
        assert list(rotations) == [200] * 24 and list(encryptions) == [200] * 24
    every_worker(srv, token, "GET", "transit/keys/busy", None,
                 lambda r: r.status_code == 200 and r.json()["data"]["latest_version"] == 25)
    every_worker(srv, token, "POST", "transit/encrypt/busy", {"plaintext": b64(b"x")},
                 encrypted_with(25))
