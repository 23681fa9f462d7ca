"""Seal state across gunicorn workers: every worker, within a second, and after re-fork."""

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


def until_every_worker(
    server: ServerProcess, check: Callable[[requests.Response], bool], path: str,
    token: str | None = None, budget: float = 15.0,
) -> dict[int, float]:
    """Hit ``path`` until each live worker has answered and passed ``check``.

    Returns, per worker pid, the seconds from the call until its first passing answer.
    Any failing answer from a worker is retried until the budget runs out.
    """
    start = time.monotonic()
    workers = server.wait_for_workers(WORKERS)
    passed: dict[int, float] = {}
    headers = {"X-Vault-Token": token} if token else {}
    while set(passed) != workers:
        assert time.monotonic() - start < budget, f"workers never passed: {workers - set(passed)}"
        resp = fresh_get(server.url + path, headers=headers)
        pid = int(resp.headers["X-Strongroom-Worker"])
        if check(resp) and pid not in passed:
            passed[pid] = time.monotonic() - start
    return passed


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
    latency = until_every_worker(server, lambda r: r.status_code == 200, "/v1/sys/health")
    assert all(t < 1.0 for t in latency.values()), latency

    # Rotation through one worker: every worker encrypts with the new term.
    assert requests.put(server.url + "/v1/sys/rotate", headers={"X-Vault-Token": token},
                        timeout=5).status_code == 204
    until_every_worker(
        server, lambda r: r.status_code == 200 and r.json()["data"]["term"] == 2,
        "/v1/sys/key-status", token=token, budget=1.0 + 5.0,
    )

    # Seal through one worker: every worker refuses within a second.
    assert requests.put(server.url + "/v1/sys/seal", headers={"X-Vault-Token": token},
                        timeout=5).status_code == 204
    sealed_at = time.monotonic()
    seen = until_every_worker(server, lambda r: r.status_code == 503, "/v1/sys/key-status",
                              token=token)
    assert all(t < 1.0 for t in seen.values()), seen
    assert time.monotonic() - sealed_at < 15


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
    seen = until_every_worker(server, lambda r: r.status_code == 200, "/v1/sys/key-status",
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
