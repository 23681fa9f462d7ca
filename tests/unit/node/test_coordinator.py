"""Seal state machine: init, unseal progress, wrong and duplicate keys, seal, rotate."""

from __future__ import annotations

import base64

import pytest

from strongroom.config import dev_config
from strongroom.errors import BadRequestError, NotInitializedError, SealedError
from strongroom.node.coordinator import LocalCoordinator
from strongroom.physical.inmem import InmemBackend
from strongroom.wsgi import local_coordinator


@pytest.fixture
def coordinator() -> LocalCoordinator:
    physical = InmemBackend()
    return local_coordinator(dev_config(), physical)


def test_init_then_unseal_with_threshold(coordinator: LocalCoordinator) -> None:
    assert coordinator.seal_status()["initialized"] is False
    result = coordinator.initialize(5, 3)
    assert len(result["keys"]) == 5 and len(result["keys_base64"]) == 5
    assert result["root_token"].startswith("hvs.")
    status = coordinator.unseal(result["keys"][0])
    assert (status["sealed"], status["progress"], status["t"], status["n"]) == (True, 1, 3, 5)
    nonce = status["nonce"]
    assert nonce
    status = coordinator.unseal(result["keys_base64"][3])
    assert status["progress"] == 2 and status["nonce"] == nonce
    status = coordinator.unseal(result["keys"][4])
    assert status["sealed"] is False and status["progress"] == 0 and status["nonce"] == ""
    assert status["cluster_name"] and status["cluster_id"]
    assert coordinator.snapshot().keyring is not None


def test_duplicate_key_does_not_advance(coordinator: LocalCoordinator) -> None:
    keys = coordinator.initialize(3, 2)["keys"]
    coordinator.unseal(keys[0])
    status = coordinator.unseal(keys[0])
    assert status["progress"] == 1 and status["sealed"] is True


def test_wrong_share_fails_and_resets(coordinator: LocalCoordinator) -> None:
    keys = coordinator.initialize(3, 2)["keys"]
    coordinator.unseal(keys[0])
    with pytest.raises(BadRequestError):
        coordinator.unseal("11" * 33)
    status = coordinator.seal_status()
    assert status["sealed"] is True and status["progress"] == 0
    coordinator.unseal(keys[1])
    assert coordinator.unseal(keys[2])["sealed"] is False


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("zz-not-a-key!", "valid hex or base64"),
        ("abcd", "shorter than minimum 16 bytes"),
        ("ab" * 40, "longer than maximum 33 bytes"),
    ],
)
def test_malformed_keys(coordinator: LocalCoordinator, key: str, message: str) -> None:
    coordinator.initialize(3, 2)
    with pytest.raises(BadRequestError, match=message):
        coordinator.unseal(key)
    assert coordinator.seal_status()["progress"] == 0


def test_reset_and_missing_key(coordinator: LocalCoordinator) -> None:
    keys = coordinator.initialize(3, 2)["keys"]
    coordinator.unseal(keys[0])
    assert coordinator.unseal(None, reset=True)["progress"] == 0
    with pytest.raises(BadRequestError, match="'key' must be specified"):
        coordinator.unseal(None)


def test_unseal_before_init(coordinator: LocalCoordinator) -> None:
    with pytest.raises(NotInitializedError):
        coordinator.unseal("ab" * 17)


@pytest.mark.parametrize(
    ("shares", "threshold", "message"),
    [(5, 6, "threshold cannot be larger"), (0, 0, "shares must be at least one"),
     (3, 1, "greater than one"), (256, 3, "less than 256")],
)
def test_bad_seal_config(
    coordinator: LocalCoordinator, shares: int, threshold: int, message: str
) -> None:
    with pytest.raises(BadRequestError, match=message):
        coordinator.initialize(shares, threshold)
    assert coordinator.seal_status()["initialized"] is False


def test_double_init_refused(coordinator: LocalCoordinator) -> None:
    coordinator.initialize(1, 1)
    with pytest.raises(BadRequestError, match="already initialized"):
        coordinator.initialize(1, 1)


def test_single_share_is_the_root_key_and_seal_rotate(coordinator: LocalCoordinator) -> None:
    result = coordinator.initialize(1, 1)
    assert len(base64.b64decode(result["keys_base64"][0])) == 32
    gen = coordinator.generation()
    coordinator.unseal(result["keys"][0])
    assert coordinator.generation() > gen
    coordinator.rotate()
    assert coordinator.snapshot().keyring.active_term == 2  # type: ignore[union-attr]
    coordinator.seal()
    assert coordinator.snapshot().sealed is True
    with pytest.raises(SealedError):
        coordinator.rotate()
    # The rotated keyring was persisted: unsealing again yields term 2.
    coordinator.unseal(result["keys"][0])
    assert coordinator.snapshot().keyring.active_term == 2  # type: ignore[union-attr]
