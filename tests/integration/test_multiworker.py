"""Node state across gunicorn workers: seal state, key rotation, policies and mounts.

A change made through one worker must hold in every worker from its very next request
(a worker that answered from a stale cache even once fails the test), and after a
worker is re-forked. Which worker answered is read from the debug header
X-Strongroom-Worker (STRONGROOM_DEBUG_WORKER_HEADER=1, set by tests/support/servers.py).
No wall-clock bounds: "immediately" is "the next answer of each worker", counted in
requests, not seconds.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from strongroom.barrier.barrier import AESGCMBarrier
from strongroom.physical.file import FileBackend
from strongroom.seal import shamir
from tests.support.servers import ServerProcess, file_config, strongroom_server

WORKERS = 3
CONFIG = file_config(workers=3)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with strongroom_server(tmp_path, CONFIG) as srv:
        srv.wait_for_workers(WORKERS)
        yield srv


def fresh_get(url: str, **kwargs: object) -> requests.Response:
    """One request on its own connection, so the kernel may hand it to any worker."""
    return requests.get(url, headers={"Connection": "close", **kwargs.pop("headers", {})},  # type: ignore[arg-type]
                        timeout=5, **kwargs)  # type: ignore[arg-type]


#: Requests spread over fresh connections until every worker has answered at least once.
MAX_REQUESTS = 100 * WORKERS


def every_worker(
    server: ServerProcess, check: Callable[[requests.Response], bool], path: str,
    token: str | None = None,
) -> set[int]:
    """Hit ``path`` until each live worker has answered; every answer must pass ``check``.

    Strict: one failing answer, from any worker, fails the test (no retrying until a
    stale cache expires). Returns the pids that answered.
    """
    workers = server.wait_for_workers(WORKERS)
    seen: set[int] = set()
    headers = {"X-Vault-Token": token} if token else {}
    for _ in range(MAX_REQUESTS):
        resp = fresh_get(server.url + path, headers=headers)
        pid = int(resp.headers["X-Strongroom-Worker"])
        assert check(resp), f"worker {pid} answered {resp.status_code} {resp.text}"
        seen.add(pid)
        if seen >= workers:
            return seen
    raise AssertionError(f"workers {workers - seen} never answered in {MAX_REQUESTS} requests")


def init(server: ServerProcess) -> dict[str, object]:
    resp = requests.put(server.url + "/v1/sys/init",
                        json={"secret_shares": 3, "secret_threshold": 2}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def unseal(server: ServerProcess, keys: list[str]) -> None:
    # Each share on its own connection: progress lives in the master, not a worker.
    for key in keys:
        resp = requests.put(server.url + "/v1/sys/unseal", json={"key": key},
                            headers={"Connection": "close"}, timeout=10)
        assert resp.status_code == 200, resp.text


def test_unseal_seal_and_rotate_reach_every_worker(server: ServerProcess) -> None:
    result = init(server)
    keys: list[str] = result["keys"]  # type: ignore[assignment]
    token: str = result["root_token"]  # type: ignore[assignment]
    unseal(server, keys[:2])
    every_worker(server, lambda r: r.status_code == 200, "/v1/sys/health")
    # Each worker has now served the first term.
    every_worker(server, lambda r: r.status_code == 200 and r.json()["data"]["term"] == 1,
                 "/v1/sys/key-status", token=token)

    # Rotation through one worker: every worker encrypts with the new term.
    assert requests.put(server.url + "/v1/sys/rotate", headers={"X-Vault-Token": token},
                        timeout=5).status_code == 204
    every_worker(server, lambda r: r.status_code == 200 and r.json()["data"]["term"] == 2,
                 "/v1/sys/key-status", token=token)

    # Seal through one worker: every worker refuses from its next request on.
    assert requests.put(server.url + "/v1/sys/seal", headers={"X-Vault-Token": token},
                        timeout=5).status_code == 204
    every_worker(server, lambda r: r.status_code == 503, "/v1/sys/key-status", token=token)


def test_reforked_worker_comes_back_unsealed(server: ServerProcess) -> None:
    result = init(server)
    unseal(server, result["keys"][:2])  # type: ignore[index]
    token: str = result["root_token"]  # type: ignore[assignment]
    before = server.worker_pids()
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while True:
        now = server.worker_pids()
        if len(now) == WORKERS and victim not in now:
            break
        assert time.monotonic() < deadline, "gunicorn did not re-fork the worker"
        time.sleep(0.05)
    (newcomer,) = now - before
    seen = every_worker(server, lambda r: r.status_code == 200, "/v1/sys/key-status",
                        token=token)
    assert newcomer in seen


def test_no_key_material_on_disk(server: ServerProcess, tmp_path: Path) -> None:
    result = init(server)
    keys: list[str] = result["keys"]  # type: ignore[assignment]
    token: str = result["root_token"]  # type: ignore[assignment]
    unseal(server, keys[:2])
    requests.put(server.url + "/v1/sys/rotate", headers={"X-Vault-Token": token}, timeout=5)

    root_key = shamir.combine([bytes.fromhex(k) for k in keys[:2]])
    ring = AESGCMBarrier(FileBackend(tmp_path / "data")).load_keyring(root_key)
    secrets_ = [root_key, token.encode(), *(t.key for t in ring.terms)]
    secrets_ += [bytes.fromhex(k) for k in keys]
    secrets_ += [k.encode() for k in keys]
    scanned = 0
    # /tmp is shared with whatever else runs on the machine: its files come and go.
    for directory in (tmp_path, Path("/tmp")):
        for root, _, names in os.walk(directory, onerror=lambda _exc: None):
            for path in (Path(root) / name for name in names):
                if directory == Path("/tmp") and "strongroom-" not in str(path):
                    continue
                try:
                    if not path.is_file() or path.stat().st_size > 50_000_000:
                        continue
                    blob = path.read_bytes()
                except OSError:
                    continue
                scanned += 1
                for secret in secrets_:
                    assert secret not in blob, f"key material found in {path}"
    assert scanned > 3


def test_concurrent_writers_across_workers_lose_nothing(server: ServerProcess) -> None:
    from concurrent.futures import ThreadPoolExecutor

    result = init(server)
    unseal(server, result["keys"][:2])  # type: ignore[index]
    headers = {"X-Vault-Token": str(result["root_token"]), "Connection": "close"}
    url = server.url + "/v1/"
    assert requests.post(url + "sys/mounts/secret", json={"type": "kv-v2"}, headers=headers,
                         timeout=5).status_code == 204
    requests.post(url + "secret/metadata/shared", json={"max_versions": 100}, headers=headers,
                  timeout=5)

    def write(i: int) -> int:
        return requests.post(url + "secret/data/shared", json={"data": {"n": i}},
                             headers=headers, timeout=10).status_code

    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(write, range(36)))
    assert codes == [200] * 36
    meta = requests.get(url + "secret/metadata/shared", headers=headers, timeout=5).json()
    assert meta["data"]["current_version"] == 36
    seen = {
        requests.get(url + f"secret/data/shared?version={v}", headers=headers,
                     timeout=5).json()["data"]["data"]["n"]
        for v in range(1, 37)
    }
    assert seen == set(range(36))

    # A limited-use token is spent exactly as often as allowed, whichever worker serves it.
    limited = requests.post(url + "auth/token/create", json={"num_uses": 10}, headers=headers,
                            timeout=5).json()["auth"]["client_token"]

    def use(_: int) -> int:
        return requests.get(url + "auth/token/lookup-self", timeout=10,
                            headers={"X-Vault-Token": limited, "Connection": "close"}).status_code

    with ThreadPoolExecutor(12) as pool:
        uses = list(pool.map(use, range(30)))
    assert uses.count(200) == 10 and uses.count(403) == 20


def put(server: ServerProcess, path: str, token: str, body: dict[str, object],
        method: str = "POST") -> int:
    return requests.request(method, f"{server.url}/v1/{path}", json=body, timeout=10,
                            headers={"X-Vault-Token": token, "Connection": "close"}).status_code


def ok(resp: requests.Response) -> bool:
    return resp.status_code == 200


def denied(resp: requests.Response) -> bool:
    return resp.status_code == 403 and resp.json() == {
        "errors": ["1 error occurred:\n\t* permission denied\n\n"]}


READER = 'path "secret/data/*" { capabilities = ["read"] }'


def test_a_tightened_or_deleted_policy_binds_every_worker_at_once(
        server: ServerProcess) -> None:
    """Each worker first serves the token under the open policy (so any per-worker cache
    of the token or policy is warm); then the change goes through one worker and the
    next answer of every worker must already be the refusal."""
    result = init(server)
    unseal(server, result["keys"][:2])  # type: ignore[index]
    root = str(result["root_token"])
    assert put(server, "sys/mounts/secret", root, {"type": "kv-v2"}) == 204
    assert put(server, "secret/data/x", root, {"data": {"v": 1}}) == 200
    assert put(server, "sys/policies/acl/reader", root, {"policy": READER}, "PUT") == 204
    created = requests.post(server.url + "/v1/auth/token/create", timeout=10,
                            headers={"X-Vault-Token": root},
                            json={"policies": ["reader"]}).json()
    reader = created["auth"]["client_token"]

    every_worker(server, ok, "/v1/secret/data/x", token=reader)  # warm
    tightened = 'path "secret/data/other" { capabilities = ["read"] }'
    assert put(server, "sys/policies/acl/reader", root, {"policy": tightened}, "PUT") == 204
    every_worker(server, denied, "/v1/secret/data/x", token=reader)

    assert put(server, "sys/policies/acl/reader", root, {"policy": READER}, "PUT") == 204
    every_worker(server, ok, "/v1/secret/data/x", token=reader)  # loosened: warm again
    assert requests.delete(server.url + "/v1/sys/policies/acl/reader", timeout=10,
                           headers={"X-Vault-Token": root}).status_code == 204
    every_worker(server, denied, "/v1/secret/data/x", token=reader)


def test_a_disabled_mount_is_gone_from_every_worker_at_once(server: ServerProcess) -> None:
    result = init(server)
    unseal(server, result["keys"][:2])  # type: ignore[index]
    root = str(result["root_token"])
    assert put(server, "sys/mounts/secret", root, {"type": "kv-v2"}) == 204
    assert put(server, "secret/data/x", root, {"data": {"v": 1}}) == 200
    every_worker(server, ok, "/v1/secret/data/x", token=root)  # every worker routes to it
    assert requests.delete(server.url + "/v1/sys/mounts/secret", timeout=10,
                           headers={"X-Vault-Token": root}).status_code == 204
    every_worker(server, lambda r: r.status_code == 404, "/v1/secret/data/x", token=root)
    # And a new mount at the same path starts empty in every worker (no stale backend).
    assert put(server, "sys/mounts/secret", root, {"type": "kv-v2"}) == 204
    every_worker(server, lambda r: r.status_code == 404, "/v1/secret/data/x", token=root)
