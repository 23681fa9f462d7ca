"""The node coordinator with the real pkcs11 seal on SoftHSM: init stores one wrap per
partition, a partition added later gets its wrap in storage at the next unseal, the
degraded state reaches seal-status and seal-backend-status, and the retry path leaves an
operator's seal alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.core.bootstrap import make_bootstrapper
from strongroom.errors import StrongroomError
from strongroom.node.coordinator import LocalCoordinator, utcnow
from strongroom.physical.inmem import InmemBackend
from strongroom.seal.base import SEALED_ROOT_KEY_PATH, SealedRootKey
from strongroom.seal.health import backend_status
from strongroom.seal.pkcs11 import Pkcs11Seal
from strongroom.seal.pkcs11_config import PartitionConfig
from strongroom.seal.shamir_seal import ShamirSeal
from tests.support.softhsm import USER_PIN, SoftHsm, private_softhsm

softhsm = pytest.fixture(private_softhsm)


def part(hsm: SoftHsm, label: str, priority: int) -> PartitionConfig:
    return PartitionConfig(name=f"hsm-{label}", priority=priority, lib=hsm.lib,
                           token_label=label, key_label="root", generate_key=True,
                           pin=USER_PIN)


def coordinator(physical: InmemBackend, seal: Pkcs11Seal) -> LocalCoordinator:
    return LocalCoordinator(physical, "inmem", make_bootstrapper(utcnow), seal=seal)


def stored(physical: InmemBackend) -> SealedRootKey:
    return SealedRootKey.from_json(physical.get(SEALED_ROOT_KEY_PATH) or b"")


def test_init_unseal_add_a_partition_and_lose_one(softhsm: SoftHsm, tmp_path: Path) -> None:
    softhsm.init_token("a")
    physical = InmemBackend()
    node = coordinator(physical, Pkcs11Seal([part(softhsm, "a", 1)]))
    answer = node.initialize(0, 0, recovery_shares=1, recovery_threshold=1)
    assert answer["keys"] == [] and answer["root_token"]
    assert [w.key_id for w in stored(physical).wrapped] == ["a/root"]

    # A second partition appears in the configuration: its wrap is stored on unseal.
    softhsm.init_token("b")
    both = Pkcs11Seal([part(softhsm, "a", 1), part(softhsm, "b", 2)])
    restarted = coordinator(physical, both)
    assert restarted.auto_unseal() is True
    assert [w.key_id for w in stored(physical).wrapped] == ["a/root", "b/root"]

    # Token a is lost: the next start unseals from b and reports a.
    softhsm.delete_token("a")
    third = coordinator(physical, Pkcs11Seal([part(softhsm, "a", 1), part(softhsm, "b", 2)]))
    assert third.retry_auto_unseal() is True
    status = third.seal_status()
    assert status["sealed"] is False
    assert status["warnings"] == ['seal partition "hsm-a" unavailable: token a not found']
    report = third.seal_backend_status()
    assert report["healthy"] is False and set(report) == {"healthy", "unhealthy_since",
                                                          "backends"}
    assert report["backends"][1] == {"name": "hsm-b", "healthy": True}
    # Nothing was dropped from storage by the node that reached only b.
    assert len(stored(physical).wrapped) == 2

    # An operator's seal is not undone by the retry job; a new process unseals.
    third.seal()
    assert third.retry_auto_unseal() is False and third.seal_status()["sealed"] is True


def test_every_partition_gone_stays_sealed_with_the_reasons(softhsm: SoftHsm) -> None:
    softhsm.init_token("a")
    physical = InmemBackend()
    coordinator(physical, Pkcs11Seal([part(softhsm, "a", 1)])).initialize(
        0, 0, recovery_shares=1, recovery_threshold=1)
    softhsm.delete_token("a")
    node = coordinator(physical, Pkcs11Seal([part(softhsm, "a", 1)]))
    with pytest.raises(StrongroomError, match="hsm-a: token a not found"):
        node.retry_auto_unseal()
    status = node.seal_status()
    assert status["sealed"] is True and len(status["warnings"]) == 1


def test_shamir_backend_status_is_one_healthy_backend() -> None:
    assert backend_status(ShamirSeal()) == {
        "healthy": True, "backends": [{"name": "shamir", "healthy": True}]}
