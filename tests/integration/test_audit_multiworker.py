"""A file audit device on a real node with several gunicorn workers: every worker
writes every request to the same file, concurrently, and every line arrives whole
(each parses; each request id appears once as a request and once as a response), big
entries included. Rotation: move the file away and send the node SIGHUP; the arbiter
re-forks its workers, the new ones write to a new file at the configured path, and no
line is lost between the two files."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.support.audit import entries, fill, tcp_collector, tiny_tmpfs
from tests.support.servers import ServerProcess, file_config, strongroom_server

WORKERS = 3


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    with strongroom_server(tmp_path, file_config(workers=WORKERS)) as srv:
        srv.wait_for_workers(WORKERS)
        init = requests.put(srv.url + "/v1/sys/init",
                            json={"secret_shares": 1, "secret_threshold": 1}, timeout=10)
        assert init.status_code == 200, init.text
        body = init.json()
        assert requests.put(srv.url + "/v1/sys/unseal", json={"key": body["keys"][0]},
                            timeout=10).status_code == 200
        token = body["root_token"]
        assert requests.post(srv.url + "/v1/sys/mounts/secret", json={
            "type": "kv", "options": {"version": "2"}},
            headers={"X-Vault-Token": token}, timeout=10).status_code == 204
        yield srv, token


def call(srv: ServerProcess, token: str, method: str, path: str,
         body: object = None) -> requests.Response:
    # A connection per request: the kernel hands each to any worker.
    return requests.request(method, f"{srv.url}/v1/{path}", json=body, timeout=30,
                            headers={"X-Vault-Token": token, "Connection": "close"})


def burst(srv: ServerProcess, token: str, count: int, tag: str) -> tuple[set[str], set[int]]:
    """``count`` requests from 16 threads (KV writes, some of 64 KiB, and reads); the
    request ids and the worker pids that answered."""
    def one(i: int) -> requests.Response:
        if i % 3 == 0:
            return call(srv, token, "GET", f"secret/data/{tag}{i % 7}")
        size = 65536 if i % 10 == 1 else 16
        return call(srv, token, "PUT", f"secret/data/{tag}{i % 7}",
                    {"data": {"v": str(i) * size}})
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(count)))
    ids: set[str] = set()
    pids: set[int] = set()
    for resp in answers:
        assert resp.status_code in (200, 404), resp.text
        pids.add(int(resp.headers["X-Strongroom-Worker"]))
        if resp.status_code == 200:
            ids.add(resp.json()["request_id"])
    return ids, pids


def by_id(lines: list[dict]) -> Counter[tuple[str, str]]:
    return Counter((e["request"].get("id", ""), e["type"]) for e in lines)


def test_every_worker_writes_every_line_whole(node: tuple[ServerProcess, str],
                                              tmp_path: Path) -> None:
    srv, token = node
    log = tmp_path / "audit.log"
    assert call(srv, token, "PUT", "sys/audit/file", {
        "type": "file", "options": {"file_path": str(log)}}).status_code == 204
    with tcp_collector() as (collector, address):
        assert call(srv, token, "PUT", "sys/audit/sock", {
            "type": "socket", "options": {"address": address}}).status_code == 204
        ids, pids = burst(srv, token, 600, "a")
        # Every worker has its own connection; the collector got every line too.
        streamed = [json.loads(line) for line in collector.wait_for(1200)]
    streamed_ids = by_id(streamed)
    for rid in ids:
        assert streamed_ids[(rid, "request")] == 1 and streamed_ids[(rid, "response")] == 1
    assert pids == srv.worker_pids()  # every worker served (and wrote) some of them
    lines = entries(log)  # every line parses: none interleaved, none cut
    seen = by_id(lines)
    for rid in ids:
        assert seen[(rid, "request")] == 1 and seen[(rid, "response")] == 1, rid
    # 404s (reads before any write) are audited too: 600 requests, two lines each.
    burst_lines = [e for e in lines if e["request"].get("path", "").startswith("secret/data/a")]
    if len(burst_lines) != 1200:  # seen once in CI (1,198): say what is missing where
        kinds = Counter((e["type"], e["request"]["operation"], e.get("error", "")[:30])
                        for e in burst_lines)
        streamed_burst = [e for e in streamed
                          if e["request"].get("path", "").startswith("secret/data/a")]
        log = (srv.workdir / "server.log").read_text(errors="replace").splitlines()
        audit_log = [line for line in log if "event=audit" in line][-10:]
        raise AssertionError(f"{len(burst_lines)} burst lines in the file, "
                             f"{len(streamed_burst)} streamed; by kind {dict(kinds)}; "
                             f"server log: {audit_log}")
    assert all(e["request"]["remote_address"] == "127.0.0.1" for e in burst_lines)
    assert all(e["request"]["remote_port"] > 0 for e in burst_lines)


def test_rotation_on_sighup(node: tuple[ServerProcess, str], tmp_path: Path) -> None:
    srv, token = node
    log = tmp_path / "audit.log"
    rotated = tmp_path / "audit.log.1"
    assert call(srv, token, "PUT", "sys/audit/file", {
        "type": "file", "options": {"file_path": str(log)}}).status_code == 204
    before_ids, _ = burst(srv, token, 90, "b")
    old_workers = srv.worker_pids()
    os.rename(log, rotated)
    os.kill(srv.proc.pid, signal.SIGHUP)  # the owner passes it on to the arbiter
    deadline = time.monotonic() + 30
    while not (len(now := srv.worker_pids()) == WORKERS and not now & old_workers):
        assert time.monotonic() < deadline, "workers were not re-forked on SIGHUP"
        time.sleep(0.05)
    after_ids, pids = burst(srv, token, 90, "c")
    for i in range(300):  # the kernel may have given the burst to fewer workers
        if pids >= now:
            break
        extra = call(srv, token, "GET", f"secret/data/c{i % 7}")
        pids.add(int(extra.headers["X-Strongroom-Worker"]))
        if extra.status_code == 200:
            after_ids.add(extra.json()["request_id"])
    assert pids == now
    assert log.exists(), "no new file at the configured path after SIGHUP"
    new_seen, old_seen = by_id(entries(log)), by_id(entries(rotated))
    for rid in after_ids:
        assert new_seen[(rid, "request")] == 1 and new_seen[(rid, "response")] == 1
        assert (rid, "request") not in old_seen
    for rid in before_ids:
        assert old_seen[(rid, "request")] == 1 and old_seen[(rid, "response")] == 1


def test_full_disk_refuses_in_every_worker(node: tuple[ServerProcess, str]) -> None:
    """A file device on a full 64 KiB tmpfs: whichever worker gets a write refuses it
    (500) and it does not happen; with room again, every worker serves."""
    srv, token = node
    with tiny_tmpfs("64k") as mnt:
        log = mnt / "audit.log"
        assert call(srv, token, "PUT", "sys/audit/file", {
            "type": "file", "options": {"file_path": str(log)}}).status_code == 204
        assert call(srv, token, "PUT", "secret/data/k", {"data": {"v": "1"}}).status_code == 200
        filler = fill(mnt)
        # Whatever still fits in the log's last page is recorded; then nothing is (not
        # even a request line: the log stops growing).
        for _ in range(50):
            before = log.stat().st_size
            if (call(srv, token, "GET", "secret/data/k").status_code == 500
                    and log.stat().st_size == before):
                break
        refused: set[int] = set()
        workers = srv.worker_pids()
        for i in range(300):  # until each worker has refused one (the kernel picks)
            resp = call(srv, token, "PUT", "secret/data/k", {"data": {"v": f"x{i}"}})
            assert resp.status_code == 500 and resp.json() == {"errors": ["internal error"]}
            refused.add(int(resp.headers["X-Strongroom-Worker"]))
            if refused == workers:
                break
        assert refused == workers
        filler.unlink()
        # (The tmpfs holds about 35 more lines: a few requests.)
        ids, _pids = burst(srv, token, 8, "k")  # reads and writes of other keys
        read = call(srv, token, "GET", "secret/data/k")
        assert read.status_code == 200 and read.json()["data"]["data"] == {"v": "1"}
        assert read.json()["data"]["metadata"]["version"] == 1
        seen = by_id(entries(log))
        assert all(seen[(rid, "request")] == 1 for rid in ids)
