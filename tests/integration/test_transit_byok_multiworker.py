"""BYOK and restore across gunicorn workers (file storage, 3 workers).

The wrapping key is made on first use: concurrent first requests landing on different
workers must agree on one key (node lock + re-read), or a client would wrap for a key
another worker cannot unwrap. A restore with ``force`` and an ``import_version`` made
through one worker must hold in every worker from its next request (the change feed
drops each worker's cached ring), counted in requests, as test_transit_multiworker.py.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.test_multiworker import init, unseal
from tests.integration.test_transit_multiworker import WORKERS, b64, call, every_worker
from tests.support.servers import ServerProcess, file_config, strongroom_server
from tests.support.transit_byok import wrap_for_import


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


def test_wrapping_key_is_one_key_for_every_worker(server: tuple[ServerProcess, str]) -> None:
    srv, token = server

    def read(_: int) -> tuple[int, str]:
        resp = call(srv, token, "GET", "transit/wrapping_key")
        assert resp.status_code == 200, resp.text
        return int(resp.headers["X-Strongroom-Worker"]), resp.json()["data"]["public_key"]

    with ThreadPoolExecutor(9) as pool:
        answers = list(pool.map(read, range(18)))  # the first ones race to create it
    assert len({pem for _, pem in answers}) == 1
    pem = answers[0][1]
    every_worker(srv, token, "GET", "transit/wrapping_key", None,
                 lambda r: r.status_code == 200 and r.json()["data"]["public_key"] == pem)
    # A key wrapped for it imports through whichever worker answers.
    material = os.urandom(32)
    resp = call(srv, token, "POST", "transit/keys/byok/import",
                {"ciphertext": wrap_for_import(pem, material), "exportable": True})
    assert resp.status_code == 204, resp.text
    every_worker(srv, token, "GET", "transit/export/encryption-key/byok", None,
                 lambda r: r.status_code == 200 and r.json()["data"]["keys"] == {
                     "1": b64(material)})
    # A second version, imported through one worker, is seen by all at once.
    second = os.urandom(32)
    resp = call(srv, token, "POST", "transit/keys/byok/import_version",
                {"ciphertext": wrap_for_import(pem, second)})
    assert resp.status_code == 204, resp.text
    every_worker(srv, token, "POST", "transit/encrypt/byok", {"plaintext": b64(b"x")},
                 lambda r: r.status_code == 200 and r.json()["data"]["ciphertext"]
                 .startswith("vault:v2:"))


def test_forced_restore_reaches_every_worker(server: tuple[ServerProcess, str]) -> None:
    srv, token = server
    opts = {"exportable": True, "allow_plaintext_backup": True}
    for name in ("a", "b"):
        assert call(srv, token, "POST", f"transit/keys/{name}", opts).status_code == 200
    plain = {"plaintext": b64(b"payload")}
    ct_a = call(srv, token, "POST", "transit/encrypt/a", plain).json()["data"]["ciphertext"]
    ct_b = call(srv, token, "POST", "transit/encrypt/b", plain).json()["data"]["ciphertext"]
    # Every worker has b's ring cached before the restore replaces it.
    every_worker(srv, token, "POST", "transit/decrypt/b", {"ciphertext": ct_b},
                 lambda r: r.status_code == 200 and r.json()["data"] == plain)
    backup = call(srv, token, "GET", "transit/backup/a").json()["data"]["backup"]
    assert json.loads(base64.b64decode(backup))["policy"]["name"] == "a"
    resp = call(srv, token, "POST", "transit/restore/b", {"backup": backup})
    assert resp.status_code == 500 and 'key \\"b\\" already exists' in resp.text
    resp = call(srv, token, "POST", "transit/restore/b", {"backup": backup, "force": True})
    assert resp.status_code == 204, resp.text
    every_worker(srv, token, "POST", "transit/decrypt/b", {"ciphertext": ct_a},
                 lambda r: r.status_code == 200 and r.json()["data"] == plain)
    every_worker(srv, token, "POST", "transit/decrypt/b", {"ciphertext": ct_b},
                 lambda r: r.status_code == 400)
