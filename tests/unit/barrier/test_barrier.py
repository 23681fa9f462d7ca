"""The barrier encrypts every entry, binds it to its path, and survives rotation."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from strongroom.barrier.barrier import KEYRING_PATH, AESGCMBarrier, InvalidRootKeyError
from strongroom.barrier.keyring import Keyring
from strongroom.barrier.view import StorageView
from strongroom.errors import CorruptEntryError, InvalidKeyError, SealedError
from strongroom.physical.inmem import InmemBackend

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def physical() -> InmemBackend:
    return InmemBackend()


@pytest.fixture
def barrier(physical: InmemBackend) -> AESGCMBarrier:
    root = os.urandom(32)
    b = AESGCMBarrier(physical)
    ring = Keyring.generate(NOW)
    b.persist_keyring(root, ring)
    b.install(b.load_keyring(root))
    return b


def test_round_trip_and_ciphertext_at_rest(barrier: AESGCMBarrier, physical: InmemBackend) -> None:
    barrier.put("logical/a/secret", b"hunter2-plaintext")
    assert barrier.get("logical/a/secret") == b"hunter2-plaintext"
    raw = physical.get("logical/a/secret")
    assert raw is not None and b"hunter2" not in raw
    assert barrier.list("logical/") == ["a/"]


def test_entry_moved_to_another_path_fails_authentication(
    barrier: AESGCMBarrier, physical: InmemBackend
) -> None:
    barrier.put("a", b"value")
    physical.put("b", physical.get("a") or b"")
    with pytest.raises(CorruptEntryError, match="'b'"):
        barrier.get("b")


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_damaged_entry_is_a_clear_error(
    barrier: AESGCMBarrier, physical: InmemBackend, damage: str
) -> None:
    barrier.put("x/y", b"value")
    raw = bytearray(physical.get("x/y") or b"")
    if damage == "flip":
        raw[-1] ^= 1
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw = bytearray()
    physical.put("x/y", bytes(raw))
    with pytest.raises(CorruptEntryError, match="x/y"):
        barrier.get("x/y")


def test_rotation_keeps_old_entries_readable(barrier: AESGCMBarrier) -> None:
    barrier.put("old", b"1")
    barrier.install(barrier.keyring.rotated(NOW))
    barrier.put("new", b"2")
    assert barrier.keyring.active_term == 2
    assert (barrier.get("old"), barrier.get("new")) == (b"1", b"2")


def test_wrong_root_key_is_rejected(barrier: AESGCMBarrier) -> None:
    with pytest.raises(InvalidRootKeyError):
        barrier.load_keyring(os.urandom(32))


def test_sealed_barrier_refuses_everything(barrier: AESGCMBarrier) -> None:
    barrier.put("k", b"v")
    barrier.seal()
    for call in (lambda: barrier.get("k"), lambda: barrier.put("k", b"v"),
                 lambda: barrier.list(""), lambda: barrier.delete("k")):
        with pytest.raises(SealedError):
            call()


def test_keyring_entry_is_encrypted(barrier: AESGCMBarrier, physical: InmemBackend) -> None:
    raw = physical.get(KEYRING_PATH) or b""
    for term in barrier.keyring.terms:
        assert term.key not in raw


def test_unknown_term_triggers_refresh_once(physical: InmemBackend) -> None:
    root = os.urandom(32)
    ring = Keyring.generate(NOW)
    writer = AESGCMBarrier(physical)
    writer.install(ring.rotated(NOW))
    writer.put("k", b"v")
    refreshed: list[int] = []
    reader = AESGCMBarrier(physical, on_unknown_term=lambda: (
        refreshed.append(1), reader.install(writer.keyring)))
    reader.install(ring)
    assert reader.get("k") == b"v"
    assert refreshed == [1]
    del root


def test_view_confines_keys(barrier: AESGCMBarrier) -> None:
    view = StorageView(barrier, "logical/m1/")
    view.put("a/b", b"1")
    assert barrier.get("logical/m1/a/b") == b"1"
    assert view.list("") == ["a/"]
    for bad in ("../m2/x", "a//b", "/abs", ""):
        with pytest.raises(InvalidKeyError):
            view.put(bad, b"x")


def test_transaction_encrypts_every_put_and_applies_all(
    barrier: AESGCMBarrier, physical: InmemBackend
) -> None:
    barrier.put("t/old", b"gone soon")
    view = StorageView(barrier, "t/")
    view.transaction([("put", "a", b"alpha-secret"), ("put", "b", b"beta"),
                      ("delete", "old", None)])
    assert (barrier.get("t/a"), barrier.get("t/b"), barrier.get("t/old")) == (
        b"alpha-secret", b"beta", None)
    assert b"alpha-secret" not in (physical.get("t/a") or b"")
    with pytest.raises(InvalidKeyError):
        view.transaction([("put", "ok", b"1"), ("put", "../escape", b"2")])
    assert barrier.get("t/ok") is None  # nothing applied when one key is invalid
