"""The transit backend on in-memory storage: the keystore's cache and invalidation, the
archive (Vault's handleArchiving), trim, auto-rotation and the request paths."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from strongroom.barrier.view import StorageView
from strongroom.core.mounts import MountContext, MountEntry
from strongroom.core.request import Operation, Request, Response
from strongroom.engines.transit import TransitBackend, transit_factory
from strongroom.engines.transit.path_rotate import auto_rotate
from strongroom.errors import BadRequestError, StrongroomError
from strongroom.physical.inmem import InmemBackend

START = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def backend(storage: InmemBackend | None = None, clock: Clock | None = None) -> TransitBackend:
    view = StorageView(storage or InmemBackend(), "logical/t/")
    entry = MountEntry(path="transit/", type="transit")
    return transit_factory(MountContext(view, entry, clock or Clock()))


def call(b: TransitBackend, op: Operation, path: str, body: dict[str, Any] | None = None,
         ) -> Response:
    req = Request(op, "transit/" + path, data=body or {})
    if op is Operation.UPDATE and b.existence(req, path) is False:
        req.operation = Operation.CREATE
    resp = b.handle(req, path)
    assert resp is not None
    return resp


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_cached_key_costs_no_storage_read() -> None:
    storage = InmemBackend()
    b = backend(storage)
    call(b, Operation.UPDATE, "keys/k")
    reads: list[str] = []
    original = storage.get

    def counting(key: str) -> bytes | None:
        reads.append(key)
        return original(key)
    storage.get = counting  # type: ignore[method-assign]
    for _ in range(3):
        ct = call(b, Operation.UPDATE, "encrypt/k", {"plaintext": b64(b"x")}).data
        assert ct is not None
        call(b, Operation.UPDATE, "decrypt/k", {"ciphertext": ct["ciphertext"]})
    assert reads == []


def test_other_process_change_is_seen_after_invalidate() -> None:
    storage = InmemBackend()
    one, two = backend(storage), backend(storage)
    call(one, Operation.UPDATE, "keys/k")
    assert two.keys.get("k") is not None  # cached in "two"
    call(one, Operation.UPDATE, "keys/k/rotate")
    stale = two.keys.get("k")
    assert stale is not None and stale.latest_version == 1
    two.invalidate("policy/k")
    fresh = two.keys.get("k")
    assert fresh is not None and fresh.latest_version == 2


def test_load_racing_an_invalidation_is_not_cached() -> None:
    storage = InmemBackend()
    b = backend(storage)
    call(b, Operation.UPDATE, "keys/k")
    b.keys.clear()
    original = b.keys.read

    def read_then_invalidate(name: str) -> Any:
        policy = original(name)
        b.keys.invalidate("policy/" + name)  # another worker wrote meanwhile
        return policy
    b.keys.read = read_then_invalidate  # type: ignore[method-assign]
    assert b.keys.get("k") is not None
    b.keys.read = original  # type: ignore[method-assign]
    assert "k" not in b.keys._cache


def test_failed_update_leaves_cached_copy_untouched() -> None:
    b = backend()
    call(b, Operation.UPDATE, "keys/k")
    before = b.keys.get("k")
    with pytest.raises(BadRequestError):
        call(b, Operation.UPDATE, "keys/k/config",
             {"deletion_allowed": True, "min_decryption_version": 5})
    assert b.keys.get("k") is before and before is not None and not before.deletion_allowed


def test_archive_moves_versions_out_and_back() -> None:
    storage = InmemBackend()
    b = backend(storage)
    call(b, Operation.UPDATE, "keys/k")
    cts = [call(b, Operation.UPDATE, "encrypt/k", {"plaintext": b64(b"v1")}).data]
    for _ in range(3):
        call(b, Operation.UPDATE, "keys/k/rotate")
    call(b, Operation.UPDATE, "keys/k/config", {"min_decryption_version": 3})
    doc = json.loads(storage.get("logical/t/policy/k") or b"")
    archive = json.loads(storage.get("logical/t/archive/k") or b"")
    assert sorted(doc["keys"]) == ["3", "4"] and len(archive["keys"]) == 5
    assert doc["archive_version"] == 4
    call(b, Operation.UPDATE, "keys/k/config", {"min_decryption_version": 1})
    ct = cts[0]
    assert ct is not None
    plain = call(b, Operation.UPDATE, "decrypt/k", {"ciphertext": ct["ciphertext"]}).data
    assert plain == {"plaintext": b64(b"v1")}
    # Trim: versions below 3 are gone for good, from the archive too.
    call(b, Operation.UPDATE, "keys/k/config",
         {"min_decryption_version": 3, "min_encryption_version": 3})
    call(b, Operation.UPDATE, "keys/k/trim", {"min_available_version": 3})
    archive = json.loads(storage.get("logical/t/archive/k") or b"")
    assert len(archive["keys"]) == 2
    with pytest.raises(BadRequestError, match="min decryption version should not be less"):
        call(b, Operation.UPDATE, "keys/k/config", {"min_decryption_version": 1})


def test_auto_rotation_runs_when_due() -> None:
    clock = Clock()
    b = backend(clock=clock)
    call(b, Operation.UPDATE, "keys/auto", {"auto_rotate_period": "1h"})
    call(b, Operation.UPDATE, "keys/manual")
    b.keys.update("auto", lambda p: setattr(p.keys[1], "time", START))
    assert auto_rotate(b, force=True) == 0
    clock.now = START + timedelta(hours=1, seconds=1)
    assert auto_rotate(b, force=True) == 1
    assert auto_rotate(b) == 0  # throttled: at most one scan an hour
    key = b.keys.get("auto")
    manual = b.keys.get("manual")
    assert key is not None and key.latest_version == 2 and key.keys[2].time == clock.now
    assert manual is not None and manual.latest_version == 1


def test_encrypt_upsert_and_disable_upsert() -> None:
    b = backend()
    resp = call(b, Operation.UPDATE, "encrypt/new", {"plaintext": b64(b"x"),
                                                     "context": b64(b"c")})
    created = b.keys.get("new")
    assert resp.status == 200 and created is not None and created.derived
    call(b, Operation.UPDATE, "config/keys", {"disable_upsert": True})
    with pytest.raises(BadRequestError, match="encryption key not found"):
        call(b, Operation.UPDATE, "encrypt/other", {"plaintext": b64(b"x")})


def test_batch_item_errors_and_status() -> None:
    b = backend()
    call(b, Operation.UPDATE, "keys/k")
    resp = call(b, Operation.UPDATE, "encrypt/k", {"batch_input": [
        {"plaintext": b64(b"a"), "reference": "one"}, {"plaintext": "@"},
        {"plaintext": b64(b"c"), "key_version": 9}]})
    assert resp.status == 400 and resp.data is not None
    results = resp.data["batch_results"]
    assert [sorted(r) for r in results] == [["ciphertext", "key_version", "reference"],
                                            ["error", "reference"], ["error", "reference"]]
    assert results[0]["reference"] == "one"
    resp = call(b, Operation.UPDATE, "encrypt/k", {"batch_input": [{"plaintext": "@"},
                                                                   {"plaintext": ""}],
                                                   "partial_failure_response_code": 207})
    assert resp.status == 207
    with pytest.raises(StrongroomError) as err:
        call(b, Operation.UPDATE, "encrypt/k", {"batch_input": [{"plaintext": 3}]})
    assert err.value.status == 500 and "expected type 'string'" in err.value.message


def test_delete_needs_deletion_allowed() -> None:
    storage = InmemBackend()
    b = backend(storage)
    call(b, Operation.UPDATE, "keys/k")
    with pytest.raises(BadRequestError, match="deletion is not allowed"):
        b.handle(Request(Operation.DELETE, "transit/keys/k"), "keys/k")
    call(b, Operation.UPDATE, "keys/k/config", {"deletion_allowed": True})
    b.handle(Request(Operation.DELETE, "transit/keys/k"), "keys/k")
    assert storage.list("logical/t/") == []
    assert b.keys.get("k") is None


@pytest.mark.parametrize("key_type", ["aes256-gcm96", "chacha20-poly1305",
                                      "xchacha20-poly1305"])
def test_batch_nonces_are_distinct(key_type: str) -> None:
    """A batch draws its random nonces in one call: each item still gets its own."""
    b = backend()
    call(b, Operation.UPDATE, "keys/n", {"type": key_type})
    resp = call(b, Operation.UPDATE, "encrypt/n",
                {"batch_input": [{"plaintext": b64(b"same")}] * 50})
    assert resp.data is not None
    raw = [base64.b64decode(r["ciphertext"].split(":")[2]) for r in resp.data["batch_results"]]
    size = 24 if key_type.startswith("x") else 12
    assert len({r[:size] for r in raw}) == 50 and len({len(r) for r in raw}) == 1
    back = call(b, Operation.UPDATE, "decrypt/n", {"batch_input": [
        {"ciphertext": r["ciphertext"]} for r in resp.data["batch_results"]]})
    assert back.data is not None
    assert {r["plaintext"] for r in back.data["batch_results"]} == {b64(b"same")}
