"""A real multi-worker node auto-unsealing from two real SoftHSM partitions (no mock).

One lifecycle: init (the node unseals itself), a restart (no key typed), a worker
killed (still serving), one token deleted (unseals, reports the degraded partition in
``sys/seal-status`` ``warnings``, ``sys/seal-backend-status`` and the log), both deleted
(stays sealed, says why), a token put back (the retry job unseals the node); an
operator's ``sys/seal`` is not undone by the retry job; the PIN reaches no log and no
worker's environment.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.ha import poll
from tests.support.servers import ServerProcess, file_config, strongroom_server
from tests.support.softhsm import SoftHsm, private_softhsm

softhsm = pytest.fixture(private_softhsm)

PIN_A = "pin-for-partition-a-4711"
PIN_B = "pin-for-partition-b-0815"

SEALS = """
enable_multiseal = true
seal "pkcs11" {{{{
  name         = "hsm-a"
  priority     = "1"
  lib          = "{lib}"
  token_label  = "tok-a"
  key_label    = "strongroom-root"
  generate_key = "true"
}}}}
seal "pkcs11" {{{{
  name         = "hsm-b"
  priority     = "2"
  lib          = "{lib}"
  token_label  = "tok-b"
  key_label    = "strongroom-root"
  pin_file     = "{pin_file}"
  generate_key = "true"
}}}}
"""


def status(node: ServerProcess) -> dict[str, Any]:
    resp = requests.get(node.url + "/v1/sys/seal-status", timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def backends(node: ServerProcess) -> dict[str, Any]:
    resp = requests.get(node.url + "/v1/sys/seal-backend-status", timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def unsealed(node: ServerProcess) -> bool:
    return status(node)["sealed"] is False


@pytest.fixture
def hsm_env(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Two tokens; hsm-a's PIN in the environment (Seal HA suffix), hsm-b's in a file."""
    softhsm.init_token("tok-a", pin=PIN_A)
    softhsm.init_token("tok-b", pin=PIN_B)
    pin_file = tmp_path / "hsm-b.pin"
    pin_file.write_text(PIN_B + "\n")
    pin_file.chmod(0o600)
    monkeypatch.setenv("VAULT_HSM_PIN_HSM_A", PIN_A)
    monkeypatch.setenv("STRONGROOM_AUTO_UNSEAL_INTERVAL", "0.3")
    monkeypatch.setenv("STRONGROOM_SEAL_CHECK_INTERVAL", "0.3")
    return pin_file


@pytest.fixture
def config(softhsm: SoftHsm, hsm_env: Path) -> str:
    return file_config(workers=2) + SEALS.format(lib=softhsm.lib, pin_file=hsm_env)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "node"
    path.mkdir()
    yield path


def _init(node: ServerProcess) -> str:
    resp = requests.put(node.url + "/v1/sys/init", timeout=30,
                        json={"recovery_shares": 1, "recovery_threshold": 1})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["keys"] == [] and body["keys_base64"] == []
    return str(body["root_token"])


def _write(node: ServerProcess, token: str, value: str) -> None:
    resp = requests.post(node.url + "/v1/cubbyhole/hsm", json={"v": value}, timeout=10,
                         headers={"X-Vault-Token": token})
    assert resp.status_code == 204, resp.text


def _read(node: ServerProcess, token: str) -> str:
    resp = requests.get(node.url + "/v1/cubbyhole/hsm", timeout=10,
                        headers={"X-Vault-Token": token})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["data"]["v"])


def _log(node: ServerProcess) -> str:
    return (node.workdir / "server.log").read_text(errors="replace")


def test_node_unseals_itself_and_survives_a_lost_partition(
        softhsm: SoftHsm, config: str, workdir: Path) -> None:
    with strongroom_server(workdir, config) as node:
        first = status(node)
        assert (first["type"], first["initialized"], first["sealed"]) == ("pkcs11", False, True)
        token = _init(node)
        poll(lambda: unsealed(node), 20, "the node to unseal itself after init")
        assert status(node)["recovery_seal"] is True and "warnings" not in status(node)
        assert backends(node) == {"healthy": True, "backends": [
            {"name": "hsm-a", "healthy": True}, {"name": "hsm-b", "healthy": True}]}
        _write(node, token, "kept")
        # The PIN is read by the owner and removed from the environment before the fork.
        for pid in {node.proc.pid, *node.worker_pids()}:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            assert b"VAULT_HSM_PIN" not in environ and PIN_A.encode() not in environ

        # A worker killed: the owner holds the keys, the new worker serves at once.
        workers = node.wait_for_workers(2)
        os.kill(min(workers), signal.SIGKILL)
        poll(lambda: len(node.worker_pids() - workers) == 1 and len(node.worker_pids()) == 2,
             20, "a replacement worker")
        for _ in range(6):
            assert _read(node, token) == "kept"

    # Restart: unsealed with no key typed.
    with strongroom_server(workdir, config) as node:
        poll(lambda: unsealed(node), 20, "the node to unseal itself at start")
        assert _read(node, token) == "kept"

    # Partition A's token is gone: B unseals; the loss is reported everywhere.
    moved_a = softhsm.delete_token("tok-a")
    with strongroom_server(workdir, config) as node:
        poll(lambda: unsealed(node), 20, "unseal from partition B")
        assert _read(node, token) == "kept"
        warnings = status(node)["warnings"]
        assert warnings == ['seal partition "hsm-a" unavailable: token tok-a not found']
        report = backends(node)
        assert report["healthy"] is False and report["unhealthy_since"].endswith("Z")
        assert [(b["name"], b["healthy"]) for b in report["backends"]] == [
            ("hsm-a", False), ("hsm-b", True)]
        assert "event=seal_partition_lost seal=hsm-a" in _log(node)

        # Back while unsealed: the periodic check sees it and logs the recovery.
        softhsm.restore_token(moved_a)
        poll(lambda: backends(node)["healthy"], 20, "partition A to be healthy again")
        assert "warnings" not in status(node)
        assert "event=seal_partition_recovered seal=hsm-a" in _log(node)

    # Both gone: sealed, and seal-status says why; one back: the retry job unseals.
    moved_a = softhsm.delete_token("tok-a")
    moved_b = softhsm.delete_token("tok-b")
    with strongroom_server(workdir, config) as node:
        poll(lambda: len(status(node).get("warnings", [])) == 2, 20, "both reasons")
        sealed = status(node)
        assert sealed["sealed"] is True
        assert sealed["warnings"] == [
            'seal partition "hsm-a" unavailable: token tok-a not found',
            'seal partition "hsm-b" unavailable: token tok-b not found']
        assert requests.get(node.url + "/v1/sys/health", timeout=5).status_code == 503
        assert "event=auto_unseal_failed" in _log(node)
        softhsm.restore_token(moved_b)
        poll(lambda: unsealed(node), 20, "the retry job to unseal from partition B")
        assert _read(node, token) == "kept"
        softhsm.restore_token(moved_a)
        poll(lambda: backends(node)["healthy"], 20, "both partitions healthy")

    log = _log(node)
    assert PIN_A not in log and PIN_B not in log


def test_an_operator_seal_is_not_undone_by_the_retry_job(
        config: str, workdir: Path) -> None:
    with strongroom_server(workdir, config) as node:
        token = _init(node)
        poll(lambda: unsealed(node), 20, "the node to unseal itself after init")
        resp = requests.put(node.url + "/v1/sys/seal", headers={"X-Vault-Token": token},
                            timeout=10)
        assert resp.status_code == 204, resp.text
        assert status(node)["sealed"] is True
        # Several retry intervals (0.3 s) later it is still sealed, as the operator wants.
        with pytest.raises(AssertionError, match="timed out"):
            poll(lambda: unsealed(node), 2, "an unwanted unseal")
    # A restart unseals it again (Vault's rule).
    with strongroom_server(workdir, config) as node:
        poll(lambda: unsealed(node), 20, "the node to unseal itself at start")
