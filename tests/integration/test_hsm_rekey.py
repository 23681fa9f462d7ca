"""Recovery keys, recovery rekey, barrier rekey and sys/rotate/root on a real multi-worker
node auto-unsealed by two real SoftHSM partitions (no mock).

The rounds live in the owner process, so requests of one rekey land on both workers;
after each change the node restarts and must unseal itself with no key typed, with
the secret written before still readable, from either partition alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from strongroom.physical.file import FileBackend
from tests.integration.test_hsm_node import PIN_A, SEALS, hsm_env, unsealed, workdir
from tests.support.ha import poll
from tests.support.servers import ServerProcess, file_config, strongroom_server
from tests.support.softhsm import SoftHsm, private_softhsm

softhsm = pytest.fixture(private_softhsm)
__all__ = ["hsm_env", "workdir"]  # fixtures shared with test_hsm_node.py


@pytest.fixture
def config(softhsm: SoftHsm, hsm_env: Path) -> str:
    return file_config(workers=2) + SEALS.format(lib=softhsm.lib, pin_file=hsm_env)


class Client:
    def __init__(self, node: ServerProcess, token: str = "") -> None:
        self.node = node
        self.token = token
        self.workers: set[str] = set()

    def call(self, method: str, path: str, expect: int = 200, **body: Any) -> Any:
        headers = {"X-Vault-Token": self.token} if self.token else {}
        resp = requests.request(method, f"{self.node.url}/v1/{path}", json=body or None,
                                headers=headers, timeout=30)
        self.workers.add(resp.headers.get("X-Strongroom-Worker", ""))
        assert resp.status_code == expect, (path, resp.status_code, resp.text)
        return resp.json() if resp.content else None


def stored(workdir: Path, key: str) -> bytes:
    """A plaintext storage entry, read from the node's file storage while it runs."""
    value = FileBackend(workdir / "data").get(key)
    assert value is not None, key
    return value


def test_recovery_keys_rekey_and_root_rotation_with_softhsm(
        softhsm: SoftHsm, config: str, workdir: Path) -> None:
    with strongroom_server(workdir, config) as node:
        c = Client(node)
        init = c.call("PUT", "sys/init", recovery_shares=3, recovery_threshold=2)
        assert init["keys"] == [] and len(init["recovery_keys"]) == 3
        recovery_keys = init["recovery_keys_base64"]
        poll(lambda: unsealed(node), 20, "the node to unseal itself after init")
        c.token = init["root_token"]
        status = c.call("GET", "sys/seal-status")
        assert (status["type"], status["t"], status["n"], status["recovery_seal"]) == (
            "pkcs11", 2, 3, True)
        c.call("POST", "cubbyhole/keep", expect=204, v="before")

        # Recovery rekey to 4 shares, threshold 3, with verification.
        nonce = c.call("PUT", "sys/rekey-recovery-key/init", secret_shares=4,
                       secret_threshold=3, require_verification=True)["nonce"]
        c.call("PUT", "sys/rekey-recovery-key/update", key=recovery_keys[0], nonce=nonce)
        done = c.call("PUT", "sys/rekey-recovery-key/update", key=recovery_keys[2],
                      nonce=nonce)
        new_keys, vnonce = done["keys"], done["verification_nonce"]
        for key in new_keys[1:3]:
            c.call("PUT", "sys/rekey-recovery-key/verify", key=key, nonce=vnonce)
        assert c.call("PUT", "sys/rekey-recovery-key/verify", key=new_keys[3],
                      nonce=vnonce) == {"nonce": vnonce, "complete": True}
        status = c.call("GET", "sys/seal-status")
        assert (status["t"], status["n"]) == (3, 4)

        # The old recovery keys no longer authorize a barrier rekey; the new ones do.
        before = stored(workdir, "core/hsm/barrier-unseal-keys")
        nonce = c.call("PUT", "sys/rekey/init")["nonce"]
        for key in recovery_keys[:2]:
            c.call("PUT", "sys/rekey/update", key=key, nonce=nonce)
        wrong = requests.put(f"{node.url}/v1/sys/rekey/update", timeout=30,
                             json={"key": recovery_keys[2], "nonce": nonce})
        assert wrong.status_code == 400 and "recovery key verification failed" in wrong.text
        for key in new_keys[:2]:
            c.call("PUT", "sys/rekey/update", key=key, nonce=nonce)
        result = c.call("PUT", "sys/rekey/update", key=new_keys[2], nonce=nonce)
        assert result["complete"] is True and result["keys"] == []
        after = stored(workdir, "core/hsm/barrier-unseal-keys")
        assert after != before
        assert len(json.loads(after)["wrapped"]) == 2  # one wrap per partition

        # sys/rotate/root: sudo, a new root key wrapped by both partitions.
        assert requests.put(f"{node.url}/v1/sys/rotate/root", timeout=10).status_code == 403
        c.call("PUT", "sys/rotate/root", expect=204)
        rotated = stored(workdir, "core/hsm/barrier-unseal-keys")
        assert rotated != after and len(json.loads(rotated)["wrapped"]) == 2
        assert c.call("GET", "cubbyhole/keep")["data"] == {"v": "before"}
        assert len(c.workers) >= 2  # the rounds were served by both workers

    # Restart with partition A gone: B alone opens the rotated root key.
    moved = softhsm.delete_token("tok-a")
    with strongroom_server(workdir, config) as node:
        poll(lambda: unsealed(node), 20, "unseal from partition B")
        c = Client(node, init["root_token"])
        assert c.call("GET", "cubbyhole/keep")["data"] == {"v": "before"}
    softhsm.restore_token(moved)
    log = (workdir / "server.log").read_text(errors="replace")
    assert PIN_A not in log
    for key in (*recovery_keys, *new_keys):
        assert key not in log
