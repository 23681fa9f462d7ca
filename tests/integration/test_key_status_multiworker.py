"""sys/key-status's encryption count is the node's, not the answering worker's.

Writes spread over several gunicorn workers; then every worker reports one and the
same count, which includes every write (before issue 11 each worker counted its own
writes only, so the workers disagreed and none saw them all).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.test_multiworker import WORKERS, every_worker, init, unseal
from tests.support.servers import ServerProcess, file_config, strongroom_server

# Keep writing until at least two workers took writes: which worker accepts a new
# connection is the kernel's choice, and under load one worker can take dozens in a
# row. Bounded, so a node that really serves from one worker only still fails.
MIN_WRITES = 30
MAX_WRITES = 600
WRITE_DEADLINE = 60.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with strongroom_server(tmp_path, file_config(workers=WORKERS)) as srv:
        srv.wait_for_workers(WORKERS)
        yield srv


def test_every_worker_reports_the_node_wide_count(server: ServerProcess) -> None:
    result = init(server)
    unseal(server, result["keys"][:2])  # type: ignore[index]
    token = str(result["root_token"])
    counts: list[int] = []

    def record(resp: requests.Response) -> bool:
        counts.append(int(resp.json()["data"]["encryptions"]))
        return resp.status_code == 200

    every_worker(server, record, "/v1/sys/key-status", token=token)
    assert len(set(counts)) == 1, counts
    before = counts[0]
    assert before > 0  # init's own writes (root token, mount table...) are counted

    headers = {"X-Vault-Token": token, "Connection": "close"}
    writers: set[str] = set()
    deadline = time.monotonic() + WRITE_DEADLINE
    writes = 0
    while writes < MIN_WRITES or (len(writers) < 2 and writes < MAX_WRITES
                                  and time.monotonic() < deadline):
        resp = requests.post(f"{server.url}/v1/cubbyhole/n{writes}", json={"v": writes},
                             headers=headers, timeout=10)
        assert resp.status_code == 204, resp.text
        writers.add(resp.headers["X-Strongroom-Worker"])
        writes += 1
    assert len(writers) > 1, (writes, writers)  # the writes did land in several workers

    counts.clear()
    every_worker(server, record, "/v1/sys/key-status", token=token)
    assert len(set(counts)) == 1, counts
    assert counts[0] >= before + writes
