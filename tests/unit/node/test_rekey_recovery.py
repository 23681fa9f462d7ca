"""Rekey and root-key rotation on an auto-sealed node (software seal double), through the
real app: recovery rekey, the barrier rekey recovery keys authorize, sys/rotate/root."""

from __future__ import annotations

import base64
import json
from typing import Any

import pysequoia
import pytest
from pysequoia import Tsk

from strongroom.barrier.barrier import KEYRING_PATH
from strongroom.core.bootstrap import make_bootstrapper
from strongroom.node import recovery
from strongroom.node.coordinator import LocalCoordinator, utcnow
from strongroom.node.root_key import RECOVERY_BACKUP_PATH
from strongroom.seal.base import RECOVERY_CONFIG_PATH, SEALED_ROOT_KEY_PATH
from tests.unit.node.test_recovery_init import AutoNode


class Auto:
    def __init__(self, shares: int = 3, threshold: int = 2) -> None:
        self.node = AutoNode()
        init = self.node.init(recovery_shares=shares, recovery_threshold=threshold).json
        self.recovery_keys: list[str] = init["recovery_keys"]
        self.headers = {"X-Vault-Token": init["root_token"]}
        self.client = self.node.client
        self.physical = self.node.physical
        mount = self.client.simulate_post("/v1/sys/mounts/kv", headers=self.headers,
                                          json={"type": "kv", "options": {"version": "2"}})
        assert mount.status_code == 204, mount.text
        self.client.simulate_put("/v1/kv/data/x", headers=self.headers,
                                 json={"data": {"v": 1}})

    def put(self, path: str, **body: Any) -> Any:
        return self.client.simulate_put("/v1/" + path, json=body)

    def secret(self) -> Any:
        return self.client.simulate_get("/v1/kv/data/x", headers=self.headers).json["data"][
            "data"]

    def restart(self) -> LocalCoordinator:
        """A new owner process on the same storage and seal: it must unseal by itself."""
        fresh = LocalCoordinator(self.node.storage.top, "inmem", make_bootstrapper(utcnow),
                                 seal=self.node.seal)
        assert fresh.auto_unseal() is True
        return fresh


@pytest.fixture
def auto() -> Auto:
    return Auto()


def test_recovery_rekey_replaces_the_recovery_key(auto: Auto) -> None:
    before = auto.physical.get(recovery.RECOVERY_KEY_PATH)
    status = auto.client.simulate_get("/v1/sys/rekey-recovery-key/init").json
    assert (status["started"], status["required"]) == (False, 2)
    nonce = auto.put("sys/rekey-recovery-key/init", secret_shares=5,
                     secret_threshold=3).json["nonce"]
    auto.put("sys/rekey-recovery-key/update", key=auto.recovery_keys[0], nonce=nonce)
    dup = auto.put("sys/rekey-recovery-key/update", key=auto.recovery_keys[0], nonce=nonce)
    assert dup.json == {"errors": [
        "given key has already been provided during this rekey operation"]}
    body = auto.put("sys/rekey-recovery-key/update", key=auto.recovery_keys[2],
                    nonce=nonce).json
    assert body["complete"] is True and len(body["keys"]) == 5
    assert auto.physical.get(recovery.RECOVERY_KEY_PATH) != before
    assert json.loads(auto.physical.get(RECOVERY_CONFIG_PATH) or b"") == {
        "type": "shamir", "secret_shares": 5, "secret_threshold": 3}
    seal_status = auto.client.simulate_get("/v1/sys/seal-status").json
    assert (seal_status["t"], seal_status["n"]) == (3, 5)
    # The old recovery keys no longer authorize anything; the new ones do.
    nonce = auto.put("sys/rekey-recovery-key/init", secret_shares=1,
                     secret_threshold=1).json["nonce"]
    for key in auto.recovery_keys[:2]:
        last = auto.put("sys/rekey-recovery-key/update", key=key, nonce=nonce)
        assert last.status_code == 200  # still collecting: the threshold is 3 now
    wrong = auto.put("sys/rekey-recovery-key/update", key=auto.recovery_keys[2], nonce=nonce)
    assert (wrong.status_code, wrong.json) == (400, {"errors": [
        "recovery key verification failed: recovery key does not match submitted values"]})
    for key in body["keys"][1:4]:
        done = auto.put("sys/rekey-recovery-key/update", key=key, nonce=nonce)
    assert done.json["complete"] is True and len(done.json["keys"]) == 1
    assert auto.secret() == {"v": 1}


def test_recovery_rekey_with_verification_pgp_and_backup(auto: Auto) -> None:
    holders = [Tsk.generate(f"r{i} <r{i}@strongroom.test>") for i in range(2)]
    pubs = [base64.b64encode(bytes(h.extract_certificate())).decode() for h in holders]
    nonce = auto.put("sys/rekey-recovery-key/init", secret_shares=2, secret_threshold=2,
                     pgp_keys=pubs, backup=True, require_verification=True).json["nonce"]
    auto.put("sys/rekey-recovery-key/update", key=auto.recovery_keys[1], nonce=nonce)
    body = auto.put("sys/rekey-recovery-key/update", key=auto.recovery_keys[0],
                    nonce=nonce).json
    plain = []
    for holder, enc in zip(holders, body["keys_base64"], strict=True):
        out = pysequoia.decrypt(base64.b64decode(enc), decryptor=holder.decryptor()).bytes
        assert out is not None
        plain.append(out.decode())
    before = auto.physical.get(recovery.RECOVERY_KEY_PATH)
    vnonce = body["verification_nonce"]
    auto.put("sys/rekey-recovery-key/verify", key=plain[0], nonce=vnonce)
    assert auto.physical.get(recovery.RECOVERY_KEY_PATH) == before  # not yet
    done = auto.put("sys/rekey-recovery-key/verify", key=plain[1], nonce=vnonce).json
    assert done == {"nonce": vnonce, "complete": True}
    assert auto.physical.get(recovery.RECOVERY_KEY_PATH) != before
    assert auto.physical.get(RECOVERY_BACKUP_PATH) is not None
    for path in ("sys/rekey/recovery-key-backup", "sys/rekey-recovery-key/backup"):
        got = auto.client.simulate_get("/v1/" + path, headers=auto.headers)
        assert got.status_code == 200 and got.json["data"]["nonce"] == nonce
    assert auto.client.simulate_delete("/v1/sys/rekey/recovery-key-backup",
                                       headers=auto.headers).status_code == 204
    assert auto.physical.get(RECOVERY_BACKUP_PATH) is None


def test_barrier_rekey_with_recovery_keys_makes_a_new_stored_root_key(auto: Auto) -> None:
    for body, what in (({"pgp_keys": ["x"], "secret_shares": 1}, "PGP key encryption"),
                       ({"require_verification": True}, "requiring verification")):
        refused = auto.put("sys/rekey/init", **body)
        assert refused.json == {"errors": [
            f"{what} not supported when rekeying the barrier key with recovery keys"]}
    sealed_before = auto.physical.get(SEALED_ROOT_KEY_PATH)
    keyring_before = auto.physical.get(KEYRING_PATH)
    started = auto.put("sys/rekey/init", secret_shares=5, secret_threshold=3).json
    assert (started["t"], started["n"], started["required"]) == (0, 0, 2)
    nonce = started["nonce"]
    auto.put("sys/rekey/update", key=auto.recovery_keys[0], nonce=nonce)
    done = auto.put("sys/rekey/update", key=auto.recovery_keys[1], nonce=nonce).json
    assert done == {"nonce": nonce, "complete": True, "keys": [], "keys_base64": [],
                    "pgp_fingerprints": None, "backup": False,
                    "verification_required": False}
    assert auto.physical.get(SEALED_ROOT_KEY_PATH) != sealed_before
    assert auto.physical.get(KEYRING_PATH) != keyring_before
    assert auto.secret() == {"v": 1}
    fresh = auto.restart()
    assert fresh.seal_status()["sealed"] is False


def test_rotate_root_rewraps_a_new_root_key_and_keeps_the_terms(auto: Auto) -> None:
    term = auto.client.simulate_get("/v1/sys/key-status", headers=auto.headers).json["term"]
    sealed_before = auto.physical.get(SEALED_ROOT_KEY_PATH)
    resp = auto.client.simulate_put("/v1/sys/rotate/root", headers=auto.headers)
    assert resp.status_code == 204, resp.text
    assert auto.physical.get(SEALED_ROOT_KEY_PATH) != sealed_before
    assert auto.client.simulate_get("/v1/sys/key-status",
                                    headers=auto.headers).json["term"] == term
    assert auto.secret() == {"v": 1}
    # sys/rotate (a new term) still works after the root key changed under it.
    assert auto.client.simulate_put("/v1/sys/rotate", headers=auto.headers).status_code == 204
    auto.restart()


def test_a_node_with_a_stale_root_key_takes_the_new_one_from_the_seal(auto: Auto) -> None:
    """Another node (same storage and seal) rotates the root key; this one rotates next."""
    other = auto.restart()
    other.rotate_root()
    assert auto.client.simulate_put("/v1/sys/rotate", headers=auto.headers).status_code == 204
    auto.restart()  # the keyring written by the stale node opens with the stored key


def test_a_partition_down_during_rotation_gets_no_wrap(auto: Auto) -> None:
    auto.node.seal.down.add("soft-b")
    assert auto.client.simulate_put("/v1/sys/rotate/root",
                                    headers=auto.headers).status_code == 204
    stored = json.loads(auto.physical.get(SEALED_ROOT_KEY_PATH) or b"")
    assert [w["key_id"] for w in stored["wrapped"]] == ["soft-a/root"]


def test_a_standby_becoming_active_after_a_root_rotation_takes_the_new_key(
        auto: Auto) -> None:
    """HA: the active rotated the root key; the standby that takes over must neither
    seal itself nor write the keyring under its old key."""
    from strongroom.ha.state import HAStatus

    standby = auto.restart()
    active = auto.node.coordinator
    active.rotate_root()
    standby._ha_status = HAStatus(enabled=True, active=True)  # as the HA manager sets it
    standby._on_active()
    assert standby.seal_status()["sealed"] is False
    standby.rotate()
    auto.restart()  # the stored root key opens what the new active wrote
