"""A request with a large body never stalls the other connections of its worker.

With local storage the core runs on the worker's event loop for small requests; a
large body may ask for seconds of CPU (a transit batch of RSA decryptions, review F2
of issue 14), so it runs on a thread. The dev server has one worker: while one
client's batch is being decrypted, another client's ``sys/health`` must be answered
long before the batch is.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.servers import ServerProcess, strongroom_dev_server

ROOT = {"X-Vault-Token": "root"}
ITEMS = 2000  # rsa-2048 decryptions: seconds of work on one core


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with strongroom_dev_server(Path(tmp_path_factory.mktemp("large-batch"))) as srv:
        yield srv


def test_health_is_answered_while_a_large_batch_runs(server: ServerProcess) -> None:
    url = server.url + "/v1/"
    requests.post(url + "sys/mounts/transit", json={"type": "transit"},
                  headers=ROOT, timeout=30).raise_for_status()
    requests.post(url + "transit/keys/big", json={"type": "rsa-2048"},
                  headers=ROOT, timeout=60).raise_for_status()
    plain = base64.b64encode(b"x" * 32).decode()
    enc = requests.post(url + "transit/encrypt/big",
                        json={"batch_input": [{"plaintext": plain}] * ITEMS},
                        headers=ROOT, timeout=120)
    enc.raise_for_status()
    batch = [{"ciphertext": item["ciphertext"]} for item in enc.json()["data"]["batch_results"]]

    done: dict[str, float] = {}

    def decrypt() -> None:
        resp = requests.post(url + "transit/decrypt/big", json={"batch_input": batch},
                             headers=ROOT, timeout=300)
        done["batch"] = time.monotonic()
        done["status"] = resp.status_code
        done["items"] = len(resp.json()["data"]["batch_results"])

    worker = threading.Thread(target=decrypt)
    started = time.monotonic()
    worker.start()
    latencies = []
    while worker.is_alive():
        sent = time.monotonic()
        requests.get(url + "sys/health", timeout=300).raise_for_status()
        latencies.append(time.monotonic() - sent)
    worker.join()
    assert done["status"] == 200 and done["items"] == ITEMS
    batch_seconds = done["batch"] - started
    # Inline, a health request sent while the batch is decrypted waits for all of
    # it; on a thread it waits for a GIL switch or two.
    assert len(latencies) >= 3, (latencies, batch_seconds)
    assert max(latencies) < batch_seconds / 4, (max(latencies), batch_seconds)
