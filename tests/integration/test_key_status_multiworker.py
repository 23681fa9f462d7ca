"""sys/key-status's encryption count is the node's, not the answering worker's.

Writes spread over several gunicorn workers; then every worker reports one and the
same count, which includes every write (before issue 11 each worker counted its own
writes only, so the workers disagreed and none saw them all).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.test_multiworker import WORKERS, every_worker, init, unseal
from tests.support.servers import ServerProcess, file_config, strongroom_server

WRITES = 30


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
    for i in range(WRITES):
        resp = requests.post(f"{server.url}/v1/cubbyhole/n{i}", json={"v": i},
                             headers=headers, timeout=10)
        assert resp.status_code == 204, resp.text
        writers.add(resp.headers["X-Strongroom-Worker"])
    assert len(writers) > 1  # the writes did land in several workers

    counts.clear()
    every_worker(server, record, "/v1/sys/key-status", token=token)
    assert len(set(counts)) == 1, counts
    assert counts[0] >= before + WRITES
