"""Seal migration Shamir -> auto-seal -> Shamir through the real app, coordinator and storage.

The auto-seal is tests/support/soft_seal.py (software AES keys, the PKCS#11 seal's shape);
tests/integration/test_seal_migration_node.py does the same with real SoftHSM tokens and real
server processes. A "restart" is a new coordinator and app over the same storage, with the
configuration of the step (the old seal given as the disabled one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import falcon.testing
import pytest

from strongroom.config import dev_config
from strongroom.core.bootstrap import make_bootstrapper
from strongroom.ha.state import HAStatus
from strongroom.node import recovery
from strongroom.node.coordinator import LocalCoordinator, utcnow
from strongroom.node.seal_migration import MIGRATION_PENDING, NO_MIGRATION_SEAL
from strongroom.node.shared import SharedCounters
from strongroom.physical.base import Backend
from strongroom.physical.chain import build_chain
from strongroom.physical.file import FileBackend
from strongroom.physical.inmem import InmemBackend
from strongroom.seal.base import (
    RECOVERY_CONFIG_PATH,
    SEAL_CONFIG_PATH,
    SEALED_ROOT_KEY_PATH,
    Seal,
    SealConfig,
)
from strongroom.seal.shamir_seal import ShamirSeal
from strongroom.wsgi import build_node
from tests.support.soft_seal import SoftAutoSeal


class Node:
    """One start of a node over ``physical`` with a seal configuration."""

    def __init__(self, physical: Backend, seal: Seal, old: Seal | None = None) -> None:
        config = dev_config()
        storage = build_chain(config, physical=physical)
        counters = SharedCounters()  # the core sees the coordinator's seal changes
        self.coordinator = LocalCoordinator(storage.top, "inmem", make_bootstrapper(utcnow),
                                            counters=counters, seal=seal, old_seal=old)
        node = build_node(config, coordinator=self.coordinator, storage=storage,
                          counters=counters)
        self.client = falcon.testing.TestClient(node.app)

    def status(self) -> dict[str, Any]:
        return self.client.simulate_get("/v1/sys/seal-status").json  # type: ignore[no-any-return]

    def unseal(self, key: str, migrate: bool = False) -> falcon.testing.Result:
        body: dict[str, Any] = {"key": key}
        if migrate:
            body["migrate"] = True
        return self.client.simulate_put("/v1/sys/unseal", json=body)

    def read(self, token: str) -> str:
        resp = self.client.simulate_get("/v1/secret/data/app", headers={"X-Vault-Token": token})
        assert resp.status_code == 200, resp.text
        return resp.json["data"]["data"]["v"]  # type: ignore[no-any-return]


def shamir_node_with_secret(physical: Backend) -> tuple[list[str], str]:
    node = Node(physical, ShamirSeal())
    init = node.client.simulate_put("/v1/sys/init", json={"secret_shares": 3,
                                                          "secret_threshold": 2}).json
    for key in init["keys"][:2]:
        node.unseal(key)
    token = init["root_token"]
    headers = {"X-Vault-Token": token}
    assert node.client.simulate_post("/v1/sys/mounts/secret", json={"type": "kv-v2"},
                                     headers=headers).status_code == 204
    assert node.client.simulate_post("/v1/secret/data/app", json={"data": {"v": "kept"}},
                                     headers=headers).status_code == 200
    return init["keys"], token


def stored(physical: Backend, path: str) -> SealConfig | None:
    raw = physical.get(path)
    return SealConfig.from_json(raw) if raw is not None else None


def migrate_with(node: Node, keys: Sequence[str]) -> dict[str, Any]:
    first = node.unseal(keys[0], migrate=True)
    assert first.status_code == 200, first.text
    assert first.json["sealed"] is True and first.json["progress"] == 1
    last = node.unseal(keys[2], migrate=True)
    assert last.status_code == 200, last.text
    return last.json  # type: ignore[no-any-return]


@pytest.mark.parametrize("shamir_stanza", [True, False], ids=["shamir-disabled", "no-stanza"])
def test_shamir_to_auto_and_back_keeps_every_secret(shamir_stanza: bool) -> None:
    physical = InmemBackend()
    keys, token = shamir_node_with_secret(physical)
    soft = SoftAutoSeal()

    # Shamir -> auto-seal: the new seal configured, and Shamir disabled (the contract's
    # stanza) or not mentioned at all (Vault's way).
    node = Node(physical, soft, old=ShamirSeal() if shamir_stanza else None)
    status = node.status()
    assert (status["migration"], status["type"], status["t"], status["n"],
            status["recovery_seal"], status["sealed"]) == (True, "pkcs11", 2, 3, True, True)
    assert node.coordinator.auto_unseal() is False  # the old seal's keys are needed
    refused = node.unseal(keys[0])
    assert refused.status_code == 500 and refused.json == {"errors": [MIGRATION_PENDING]}
    done = migrate_with(node, keys)
    assert done["sealed"] is False and done["migration"] is False
    assert done["type"] == "pkcs11" and (done["t"], done["n"]) == (2, 3)
    assert stored(physical, SEAL_CONFIG_PATH) == SealConfig("pkcs11", 1, 1)
    assert stored(physical, RECOVERY_CONFIG_PATH) == SealConfig("shamir", 3, 2)
    assert node.read(token) == "kept"

    # Restarted with the auto-seal alone: it unseals itself; the old unseal keys are the
    # recovery keys now (generate-root takes them), and no longer open the barrier.
    node = Node(physical, soft)
    assert node.coordinator.auto_unseal() is True
    assert node.read(token) == "kept"
    attempt = node.client.simulate_put("/v1/sys/generate-root/attempt").json
    node.client.simulate_put("/v1/sys/generate-root/update",
                             json={"key": keys[1], "nonce": attempt["nonce"]})
    assert node.client.simulate_put("/v1/sys/generate-root/update", json={
        "key": keys[2], "nonce": attempt["nonce"]}).json["complete"] is True

    # auto-seal -> Shamir: Shamir configured, the auto-seal disabled.
    node = Node(physical, ShamirSeal(), old=soft)
    status = node.status()
    assert (status["migration"], status["type"], status["t"], status["n"],
            status["recovery_seal"]) == (True, "shamir", 2, 3, False)
    assert node.coordinator.auto_unseal() is False
    done = migrate_with(node, keys)
    assert done["sealed"] is False and done["migration"] is False
    assert stored(physical, SEAL_CONFIG_PATH) == SealConfig("shamir", 3, 2)
    for gone in (SEALED_ROOT_KEY_PATH, recovery.RECOVERY_KEY_PATH, RECOVERY_CONFIG_PATH):
        assert physical.get(gone) is None
    assert node.read(token) == "kept"

    # Restarted with Shamir alone: the recovery shares are the unseal shares.
    node = Node(physical, ShamirSeal())
    node.unseal(keys[1])
    assert node.unseal(keys[0]).json["sealed"] is False
    assert node.read(token) == "kept"


def test_migrate_refusals() -> None:
    physical = InmemBackend()
    keys, _ = shamir_node_with_secret(physical)
    plain = Node(physical, ShamirSeal())
    resp = plain.unseal(keys[0], migrate=True)
    assert resp.status_code == 500 and resp.json == {"errors": [NO_MIGRATION_SEAL]}
    assert plain.status()["migration"] is False

    node = Node(physical, SoftAutoSeal(), old=ShamirSeal())
    # Shares of another node: refused, nothing written, the right ones still work.
    other_keys, _ = shamir_node_with_secret(InmemBackend())
    node.unseal(other_keys[0], migrate=True)
    wrong = node.unseal(other_keys[1], migrate=True)
    assert wrong.status_code == 400 and wrong.json == {"errors": ["unseal failed, invalid key"]}
    assert stored(physical, SEAL_CONFIG_PATH) == SealConfig("shamir", 3, 2)
    assert physical.get(SEALED_ROOT_KEY_PATH) is None
    assert node.status()["progress"] == 0
    assert migrate_with(node, keys)["sealed"] is False


class StopsOnce:
    """File storage that fails the first put of one path (a crash part-way through)."""

    def __init__(self, inner: FileBackend, path: str) -> None:
        self.inner, self.path, self.armed = inner, path, True

    def get(self, key: str) -> bytes | None:
        return self.inner.get(key)

    def put(self, key: str, value: bytes) -> None:
        if key == self.path and self.armed:
            self.armed = False
            raise OSError("stopped")
        self.inner.put(key, value)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def list(self, prefix: str) -> list[str]:
        return self.inner.list(prefix)


@pytest.mark.parametrize("direction", ["to_auto", "to_shamir"])
def test_a_migration_stopped_before_the_seal_config_resumes(tmp_path: Any,
                                                            direction: str) -> None:
    """No transaction on file storage: writes in an order whose every prefix resumes."""
    physical = FileBackend(tmp_path / "data")
    keys, token = shamir_node_with_secret(physical)
    soft = SoftAutoSeal()
    if direction == "to_shamir":
        migrate_with(Node(physical, soft, old=ShamirSeal()), keys)
        new, old = ShamirSeal(), soft
    else:
        new, old = soft, ShamirSeal()
    failing = StopsOnce(physical, SEAL_CONFIG_PATH)
    node = Node(failing, new, old=old)  # type: ignore[arg-type]
    node.unseal(keys[0], migrate=True)
    crashed = node.unseal(keys[2], migrate=True)
    assert crashed.status_code == 500 and node.status()["sealed"] is True
    # The keyring is under the new root key already; the stored config is the old one.
    assert stored(physical, SEAL_CONFIG_PATH).type == old.type  # type: ignore[union-attr]
    node = Node(physical, new, old=old)
    assert node.status()["migration"] is True
    done = migrate_with(node, keys)
    assert done["sealed"] is False and done["migration"] is False
    assert stored(physical, SEAL_CONFIG_PATH).type == new.type  # type: ignore[union-attr]
    assert node.read(token) == "kept"


def test_a_seal_storage_does_not_describe_needs_a_disabled_seal() -> None:
    physical = InmemBackend()
    keys, token = shamir_node_with_secret(physical)
    migrate_with(Node(physical, SoftAutoSeal(), old=ShamirSeal()), keys)
    # Shamir configured over a pkcs11 node, the pkcs11 stanza left out: refused, as Vault
    # refuses to start ("no disabled seal in configuration"); nothing is changed.
    node = Node(physical, ShamirSeal())
    assert node.status()["migration"] is False
    for migrate in (False, True):
        resp = node.unseal(keys[0], migrate=migrate)
        assert resp.status_code == 500
        assert resp.json == {"errors": ['cannot seal migrate from "pkcs11" to Shamir, no '
                                        "disabled seal in configuration"]}
    assert stored(physical, SEAL_CONFIG_PATH) == SealConfig("pkcs11", 1, 1)


def test_a_node_whose_root_key_was_migrated_away_seals_when_it_becomes_active() -> None:
    """HA: the old active node, a standby once another node migrated the seal, still holds
    the old root key; if it became active again it must not write the keyring under it."""
    physical = InmemBackend()
    keys, token = shamir_node_with_secret(physical)
    old_node = Node(physical, ShamirSeal())
    old_node.unseal(keys[0])
    old_node.unseal(keys[1])
    coordinator = old_node.coordinator
    active = HAStatus(enabled=True, active=True)
    coordinator._ha_status = active  # noqa: SLF001 - what its HA manager would publish
    coordinator._on_active()  # noqa: SLF001 - the root key is current: nothing happens
    assert old_node.status()["sealed"] is False

    soft = SoftAutoSeal()
    migrate_with(Node(physical, soft, old=ShamirSeal()), keys)
    coordinator._on_active()  # noqa: SLF001 - as after a failover back to it
    assert old_node.status()["sealed"] is True
    # Storage is still the migrated node's: the auto-seal opens it, nothing was lost.
    node = Node(physical, soft)
    assert node.coordinator.auto_unseal() is True
    assert node.read(token) == "kept"
