"""Seal migration Shamir -> PKCS#11 -> Shamir on one real multi-worker node, real SoftHSM.

Vault's procedure, step by step, each step a restart of the server process with the
step's configuration: a Shamir node with a KV secret; the ``seal "pkcs11"`` stanza added
with ``seal "shamir" { disabled = "true" }`` (``migration: true``, a plain unseal refused,
``operator unseal -migrate`` with the unseal keys); the pkcs11 stanza alone (the node
unseals itself, the old unseal keys are the recovery keys: generate-root takes them); the
pkcs11 stanza marked ``disabled = "true"`` (``unseal -migrate`` with the recovery keys);
no seal stanza (the same keys unseal it). The secret is read after every step.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from strongroom.node.generate_root import decode_token
from strongroom.node.seal_migration import MIGRATION_PENDING
from tests.support.ha import poll
from tests.support.servers import REPO, ServerProcess, file_config, strongroom_server
from tests.support.softhsm import SoftHsm, private_softhsm

softhsm = pytest.fixture(private_softhsm)

PIN = "pin-for-migration-4711"
PKCS11 = """
seal "pkcs11" {{{{
  lib          = "{lib}"
  token_label  = "tok-a"
  key_label    = "strongroom-root"
  generate_key = "true"{disabled}
}}}}
"""
SHAMIR_DISABLED = """
seal "shamir" {{
  disabled = "true"
}}
"""


def pkcs11(hsm: SoftHsm, disabled: bool = False) -> str:
    return PKCS11.format(lib=hsm.lib, disabled='\n  disabled     = "true"' if disabled else "")


@pytest.fixture
def hsm(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> SoftHsm:
    softhsm.init_token("tok-a", pin=PIN)
    monkeypatch.setenv("VAULT_HSM_PIN", PIN)
    monkeypatch.setenv("STRONGROOM_AUTO_UNSEAL_INTERVAL", "0.3")
    return softhsm


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "node"
    path.mkdir()
    yield path


def status(node: ServerProcess) -> dict[str, Any]:
    resp = requests.get(node.url + "/v1/sys/seal-status", timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def read(node: ServerProcess, token: str) -> str:
    resp = requests.get(node.url + "/v1/secret/data/app", timeout=10,
                        headers={"X-Vault-Token": token})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["data"]["data"]["v"])


def cli(node: ServerProcess, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update(PYTHONPATH=str(REPO / "server"), VAULT_ADDR=node.url)
    return subprocess.run([sys.executable, "-m", "strongroom.cli.main", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=60, check=False)


def migrate(node: ServerProcess, keys: list[str]) -> None:
    """``strongroom operator unseal -migrate`` with two shares (threshold 2)."""
    first = cli(node, "operator", "unseal", "-migrate", "-format=json", keys[2])
    assert first.returncode == 0, first.stderr
    second = cli(node, "operator", "unseal", "-migrate", "-format=json", stdin=keys[0] + "\n")
    assert second.returncode == 0, second.stderr


def test_shamir_to_pkcs11_and_back(hsm: SoftHsm, workdir: Path) -> None:
    base = file_config(workers=2)
    with strongroom_server(workdir, base) as node:
        init = requests.put(node.url + "/v1/sys/init", timeout=30,
                            json={"secret_shares": 3, "secret_threshold": 2}).json()
        keys, token = init["keys"], init["root_token"]
        for key in keys[:2]:
            requests.put(node.url + "/v1/sys/unseal", json={"key": key}, timeout=10)
        headers = {"X-Vault-Token": token}
        assert requests.post(node.url + "/v1/sys/mounts/secret", json={"type": "kv-v2"},
                             headers=headers, timeout=10).status_code == 204
        assert requests.post(node.url + "/v1/secret/data/app", json={"data": {"v": "kept"}},
                             headers=headers, timeout=10).status_code == 200

    # 1. Shamir -> pkcs11: the new stanza, Shamir disabled.
    with strongroom_server(workdir, base + pkcs11(hsm) + SHAMIR_DISABLED) as node:
        seen = status(node)
        assert (seen["migration"], seen["type"], seen["sealed"], seen["t"], seen["n"],
                seen["recovery_seal"]) == (True, "pkcs11", True, 2, 3, True)
        plain = requests.put(node.url + "/v1/sys/unseal", json={"key": keys[0]}, timeout=10)
        assert plain.status_code == 500 and plain.json() == {"errors": [MIGRATION_PENDING]}
        table = cli(node, "status")
        assert table.returncode == 2 and "Seal Migration in Progress" in table.stdout
        migrate(node, keys)
        seen = status(node)
        assert (seen["sealed"], seen["migration"], seen["type"]) == (False, False, "pkcs11")
        assert read(node, token) == "kept"
        log = (workdir / "server.log").read_text(errors="replace")
        assert "event=seal_migration_complete seal=pkcs11" in log and PIN not in log

    # 2. pkcs11 alone: unseals itself; the old unseal keys are the recovery keys.
    with strongroom_server(workdir, base + pkcs11(hsm)) as node:
        poll(lambda: status(node)["sealed"] is False, 30, "auto-unseal")
        assert status(node)["migration"] is False
        assert read(node, token) == "kept"
        attempt = requests.put(node.url + "/v1/sys/generate-root/attempt", timeout=10).json()
        for key in keys[1:]:
            done = requests.put(node.url + "/v1/sys/generate-root/update", timeout=10,
                                json={"key": key, "nonce": attempt["nonce"]}).json()
        new_root = decode_token(done["encoded_token"], attempt["otp"])
        assert read(node, new_root) == "kept"

    # 3. pkcs11 -> Shamir: the pkcs11 stanza disabled.
    with strongroom_server(workdir, base + pkcs11(hsm, disabled=True)) as node:
        seen = status(node)
        assert (seen["migration"], seen["type"], seen["sealed"], seen["t"], seen["n"],
                seen["recovery_seal"]) == (True, "shamir", True, 2, 3, False)
        migrate(node, keys)
        seen = status(node)
        assert (seen["sealed"], seen["migration"], seen["type"]) == (False, False, "shamir")
        assert read(node, token) == "kept"

    # 4. No seal stanza: the recovery keys are the unseal keys now.
    with strongroom_server(workdir, base) as node:
        assert status(node)["sealed"] is True
        for key in (keys[1], keys[2]):
            requests.put(node.url + "/v1/sys/unseal", json={"key": key}, timeout=10)
        assert status(node)["sealed"] is False
        assert read(node, token) == "kept"
