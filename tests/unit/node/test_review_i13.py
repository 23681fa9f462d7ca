"""Attacker-side review of issue 13: crash consistency of root-key changes on storage
without transactions (file), malformed stored seal entries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from strongroom.barrier.barrier import KEYRING_PATH
from strongroom.core.bootstrap import make_bootstrapper
from strongroom.errors import StrongroomError
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


def test_generate_root_takes_no_shares_a_rekey_on_another_node_replaced() -> None:
    """Two owners on one storage (an HA pair): after a Shamir rekey on one, the other
    (e.g. just promoted, before it noticed) must not mint a root token for the old,
    revoked shares: they are checked against the stored keyring, as Vault checks them
    against its stored keys, not against the key this node unsealed with."""
    from strongroom.physical.inmem import InmemBackend

    physical = InmemBackend()
    first = LocalCoordinator(physical, "inmem", make_bootstrapper(utcnow))
    (old,) = first.initialize(1, 1)["keys"]
    first.unseal(old)
    second = LocalCoordinator(physical, "inmem", make_bootstrapper(utcnow))
    second.unseal(old)
    nonce = first.rekey_init("barrier", secret_shares=1, secret_threshold=1)["nonce"]
    (new,) = first.rekey_update(old, nonce)["keys"]
    attempt = second.generate_root_start()
    with pytest.raises(StrongroomError, match="root key verification failed"):
        second.generate_root_update(old, attempt["nonce"])
    # The current shares still work, on either node.
    done = second.generate_root_update(new, attempt["nonce"])
    assert done["complete"] is True
    attempt = first.generate_root_start()
    assert first.generate_root_update(new, attempt["nonce"])["complete"] is True


@pytest.mark.parametrize("otp", ["é" * 28, "€" * 28, "A" * 27 + "é"])
def test_a_non_ascii_otp_is_refused_by_its_length_in_bytes(otp: str) -> None:
    """Vault measures the OTP in bytes (Go's len): 28 characters that are not all ASCII
    are refused (they were accepted and XOR'ed as '?' bytes)."""
    from strongroom.physical.inmem import InmemBackend

    owner = LocalCoordinator(InmemBackend(), "inmem", make_bootstrapper(utcnow))
    (key,) = owner.initialize(1, 1)["keys"]
    owner.unseal(key)
    with pytest.raises(StrongroomError, match="OTP string has incorrect length"):
        owner.generate_root_start(otp=otp)


@pytest.mark.parametrize("change", ["rotate_root", "recovery_rekey"])
def test_a_partition_back_while_unsealed_gets_its_wrap_at_the_next_check(
        tmp_path: Path, change: str) -> None:
    """Partition B is down while the root key (or the recovery key) changes, so only A
    wraps the new key. B comes back while the node stays unsealed: the periodic seal
    check must give it a wrap, or the redundancy is silently gone (B reported healthy)
    and losing A later leaves the node sealed (or without its recovery key)."""
    seal = SoftAutoSeal()
    owner = _node(FileBackend(tmp_path / "data"), seal)
    init = owner.initialize(0, 0, recovery_shares=1, recovery_threshold=1)
    assert owner.auto_unseal() is True
    seal.down.add("soft-b")
    if change == "rotate_root":
        owner.rotate_root()
    else:
        nonce = owner.rekey_init("recovery", secret_shares=1, secret_threshold=1)["nonce"]
        (new_recovery,) = owner.rekey_update(init["recovery_keys_base64"][0], nonce,
                                             "recovery")["keys_base64"]
    seal.down.discard("soft-b")
    owner.check_seal()  # the owner's periodic probe (node/auto_unseal.py)
    seal.down.add("soft-a")
    fresh = _node(FileBackend(tmp_path / "data"), seal)
    assert fresh.auto_unseal() is True
    if change == "recovery_rekey":
        attempt = fresh.generate_root_start()
        assert fresh.generate_root_update(new_recovery, attempt["nonce"])["complete"] is True


def test_an_inline_hsm_pin_is_not_in_the_configuration_repr(tmp_path: Path) -> None:
    from strongroom.config import load_config

    path = tmp_path / "server.hcl"
    path.write_text('storage "inmem" {}\nlistener "tcp" {\n  address = "127.0.0.1:1"\n'
                    '  tls_disable = true\n}\nseal "pkcs11" {\n  lib = "/x.so"\n'
                    '  token_label = "t"\n  key_label = "k"\n  pin = "SECRET-PIN-4711"\n}\n')
    config = load_config(path)
    assert "SECRET-PIN-4711" not in repr(config)
    assert "SECRET-PIN-4711" not in str(config)
    assert "token_label" in repr(config)
