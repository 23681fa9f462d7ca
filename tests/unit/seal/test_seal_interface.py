"""The seal interface (seal/base.py): the Shamir seal, the stored shapes, and an auto-seal
plugged into the coordinator the way issue 13's PKCS#11 seal will be."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.config import dev_config
from strongroom.core.bootstrap import make_bootstrapper
from strongroom.errors import BadRequestError
from strongroom.node.coordinator import LocalCoordinator, utcnow
from strongroom.physical.inmem import InmemBackend
from strongroom.seal.base import (
    SEAL_CONFIG_PATH,
    SEALED_ROOT_KEY_PATH,
    Protected,
    Seal,
    SealConfig,
    SealedRootKey,
    SealHealth,
    WrappedRootKey,
)
from strongroom.seal.shamir_seal import ShamirSeal
from strongroom.wsgi import local_coordinator

ROOT_KEY = bytearray(range(32))


def test_shamir_is_a_seal_that_needs_operators() -> None:
    seal: Seal = ShamirSeal()  # mypy checks the protocol here
    assert (seal.type, seal.auto_unseal) == ("shamir", False)
    assert seal.health() == SealHealth()


def test_shamir_protects_by_splitting_and_stores_nothing() -> None:
    seal = ShamirSeal()
    config = SealConfig("shamir", 5, 3)
    protected = seal.protect(ROOT_KEY, config)
    assert protected.stored is None and len(protected.shares) == 5
    assert all(len(s) == 33 for s in protected.shares)
    assert seal.recover(protected.shares[1:4], None, config) == ROOT_KEY
    assert seal.recover([protected.shares[4], protected.shares[0], protected.shares[2]],
                        None, config) == ROOT_KEY


def test_one_shamir_share_is_the_root_key_itself() -> None:
    seal = ShamirSeal()
    config = SealConfig("shamir", 1, 1)
    (only,) = seal.protect(ROOT_KEY, config).shares
    assert only == ROOT_KEY and only is not ROOT_KEY
    assert seal.recover([only], None, config) == ROOT_KEY


def test_shares_that_do_not_combine_are_a_bad_request() -> None:
    seal = ShamirSeal()
    config = SealConfig("shamir", 3, 2)
    a, _, _ = seal.protect(ROOT_KEY, config).shares
    with pytest.raises(BadRequestError, match="failed to compute root key: duplicate part"):
        seal.recover([a, bytearray(a)], None, config)


@pytest.mark.parametrize(
    ("shares", "threshold", "message"),
    [(0, 1, "shares must be at least one"), (3, 0, "threshold must be at least one"),
     (3, 1, "threshold must be greater than one for multiple shares"),
     (256, 3, "shares must be less than 256"), (2, 3, "threshold cannot be larger than shares")],
)
def test_shamir_config_is_checked_with_vaults_messages(shares: int, threshold: int,
                                                       message: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        ShamirSeal().validate_config(SealConfig("shamir", shares, threshold))
    assert caught.value.message == "invalid seal configuration: " + message


def test_the_stored_seal_config_keeps_its_shape() -> None:
    """Nodes initialized before the interface must keep reading their config."""
    raw = SealConfig("shamir", 5, 3).to_json()
    assert json.loads(raw) == {"type": "shamir", "secret_shares": 5, "secret_threshold": 3}
    assert SealConfig.from_json(raw) == SealConfig("shamir", 5, 3)
    recovery = SealConfig("pkcs11", 1, 1, recovery_shares=5, recovery_threshold=3)
    assert SealConfig.from_json(recovery.to_json()) == recovery


def test_a_sealed_root_key_round_trips_with_one_entry_per_partition() -> None:
    sealed = SealedRootKey("pkcs11", (
        WrappedRootKey("token-a/root", "CKM_AES_GCM", b"\x01" * 48, b"\x02" * 12),
        WrappedRootKey("token-b/root", "CKM_AES_GCM", b"\x03" * 48, b"\x04" * 12),
    ))
    assert SealedRootKey.from_json(sealed.to_json()) == sealed


class FakeAutoSeal:
    """An auto-seal with a software key: the shape a PKCS#11 seal fills in."""

    def __init__(self) -> None:
        self.key = AESGCM.generate_key(256)

    @property
    def type(self) -> str:
        return "fake-auto"

    @property
    def auto_unseal(self) -> bool:
        return True

    def validate_config(self, config: SealConfig) -> None:
        if config.secret_shares != 1:
            raise BadRequestError("secret_shares must be 1 with an auto-seal")

    def protect(self, root_key: bytearray, config: SealConfig) -> Protected:
        iv = os.urandom(12)
        wrapped = WrappedRootKey("soft/root", "AES-GCM",
                                 AESGCM(self.key).encrypt(iv, bytes(root_key), None), iv)
        return Protected(shares=[], stored=SealedRootKey(self.type, (wrapped,)))

    def recover(self, shares: Sequence[bytearray], stored: SealedRootKey | None,
                config: SealConfig) -> bytearray:
        assert stored is not None and not shares
        (wrapped,) = stored.wrapped
        return bytearray(AESGCM(self.key).decrypt(wrapped.iv, wrapped.ciphertext, None))

    def health(self) -> SealHealth:
        return SealHealth()


def test_an_auto_seal_stores_the_root_key_and_unseals_with_no_operator() -> None:
    physical = InmemBackend()
    seal = FakeAutoSeal()

    def coordinator() -> LocalCoordinator:
        return LocalCoordinator(physical, "inmem", make_bootstrapper(utcnow), seal=seal)

    first = coordinator()
    # Vault's rule: secret_shares/secret_threshold are not given with an auto-seal.
    answer = first.initialize(0, 0)
    assert answer["keys"] == [] and answer["root_token"].startswith("hvs.")
    stored = SealedRootKey.from_json(physical.get(SEALED_ROOT_KEY_PATH) or b"")
    assert stored.seal_type == "fake-auto" and len(stored.wrapped) == 1
    assert json.loads(physical.get(SEAL_CONFIG_PATH) or b"")["type"] == "fake-auto"

    restarted = coordinator()
    status = restarted.seal_status()
    assert (status["type"], status["sealed"], status["recovery_seal"]) == (
        "fake-auto", True, True)
    assert restarted.auto_unseal() is True
    assert restarted.seal_status()["sealed"] is False
    assert restarted.snapshot().keyring is not None


def test_a_shamir_node_never_unseals_itself() -> None:
    coordinator = local_coordinator(dev_config(), InmemBackend())
    coordinator.initialize(3, 2)
    assert coordinator.auto_unseal() is False
    assert coordinator.seal_status()["sealed"] is True
