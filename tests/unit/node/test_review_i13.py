"""Attacker-side review of issue 13: crash consistency of root-key changes on storage
without transactions (file), malformed stored seal entries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from strongroom.barrier.barrier import KEYRING_PATH
from strongroom.core.bootstrap import make_bootstrapper
from strongroom.node import recovery
from strongroom.node.coordinator import LocalCoordinator, utcnow
from strongroom.physical.file import FileBackend
from strongroom.seal.base import SEALED_ROOT_KEY_PATH, MalformedSealEntryError
from tests.support.soft_seal import SoftAutoSeal


class Crash(BaseException):
    """The owner process killed between two storage writes."""


class CrashingFile:
    """File storage (no transaction: apply_ops writes one entry after another) that
    'dies' at the first write of ``crash_at`` once armed, after ``after`` was written."""

    def __init__(self, root: Path) -> None:
        self.inner = FileBackend(root)
        self.armed = False
        self.crash_at = KEYRING_PATH
        self.written: list[str] = []

    def get(self, key: str) -> bytes | None:
        return self.inner.get(key)

    def put(self, key: str, value: bytes) -> None:
        if self.armed and key == self.crash_at:
            raise Crash(key)
        if self.armed:
            self.written.append(key)
        self.inner.put(key, value)

    def delete(self, key: str) -> None:
        if self.armed and key == self.crash_at:
            raise Crash(key)
        self.inner.delete(key)

    def list(self, prefix: str) -> Sequence[str]:
        return self.inner.list(prefix)


def _node(physical: object, seal: SoftAutoSeal) -> LocalCoordinator:
    return LocalCoordinator(physical, "file", make_bootstrapper(utcnow),  # type: ignore[arg-type]
                            seal=seal)


@pytest.mark.parametrize("crash_at", [KEYRING_PATH, SEALED_ROOT_KEY_PATH])
def test_a_crash_in_the_middle_of_rotate_root_leaves_a_node_that_opens(
        tmp_path: Path, crash_at: str) -> None:
    seal = SoftAutoSeal()
    storage = CrashingFile(tmp_path / "data")
    owner = _node(storage, seal)
    owner.initialize(0, 0, recovery_shares=1, recovery_threshold=1)
    assert owner.auto_unseal() is True or owner.seal_status()["sealed"] is False
    storage.armed, storage.crash_at = True, crash_at
    with pytest.raises(Crash):
        owner.rotate_root()
    # A new owner process on what reached the disk: it must open (old or new root key).
    fresh = _node(FileBackend(tmp_path / "data"), seal)
    assert fresh.auto_unseal() is True
    assert fresh.seal_status()["sealed"] is False
    # And a later rotation from there still works and reopens.
    fresh.rotate_root()
    assert _node(FileBackend(tmp_path / "data"), seal).auto_unseal() is True


TAMPERED = [b"{not json", b"[]", b"null", b'{"seal_type": "pkcs11"}',
            b'{"seal_type": "pkcs11", "wrapped": []}',
            b'{"seal_type": "pkcs11", "wrapped": [{"key_id": "a/b"}]}',
            b'{"seal_type": "pkcs11", "wrapped": [{"key_id": "a/b", "mechanism": "m", '
            b'"ciphertext": "not base64!"}]}',
            b'{"seal_type": "pkcs11", "wrapped": [7]}',
            b"[" * 100000]


@pytest.mark.parametrize("raw", TAMPERED, ids=range(len(TAMPERED)))
def test_a_malformed_stored_root_key_fails_closed_with_a_clear_error(
        tmp_path: Path, raw: bytes) -> None:
    seal = SoftAutoSeal()
    owner = _node(FileBackend(tmp_path / "data"), seal)
    owner.initialize(0, 0, recovery_shares=1, recovery_threshold=1)
    good = FileBackend(tmp_path / "data").get(SEALED_ROOT_KEY_PATH)
    FileBackend(tmp_path / "data").put(SEALED_ROOT_KEY_PATH, raw)
    fresh = _node(FileBackend(tmp_path / "data"), seal)
    with pytest.raises(MalformedSealEntryError, match="core/hsm/barrier-unseal-keys"):
        fresh.auto_unseal()
    assert fresh.seal_status()["sealed"] is True
    assert good is not None
    FileBackend(tmp_path / "data").put(SEALED_ROOT_KEY_PATH, good)
    assert fresh.auto_unseal() is True


def test_a_malformed_recovery_key_fails_with_a_clear_error(tmp_path: Path) -> None:
    seal = SoftAutoSeal()
    owner = _node(FileBackend(tmp_path / "data"), seal)
    init = owner.initialize(0, 0, recovery_shares=1, recovery_threshold=1)
    owner.auto_unseal()
    FileBackend(tmp_path / "data").put(recovery.RECOVERY_KEY_PATH, b"{")
    owner.rekey_init("recovery", secret_shares=1, secret_threshold=1)
    nonce = owner.rekey_status("recovery")["nonce"]
    with pytest.raises(MalformedSealEntryError, match="core/recovery-key"):
        owner.rekey_update(init["recovery_keys_base64"][0], nonce, "recovery")
