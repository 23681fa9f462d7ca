"""``backup/<name>`` and ``restore[/<name>]`` over the HTTP edge of an in-process node."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from port_helpers import b64, error, internal, ok, transit_node

from tests.support.nodes import DevNode

OPTS = {"exportable": True, "allow_plaintext_backup": True}


@pytest.fixture(scope="module")
def d() -> DevNode:
    return transit_node()


def blob(doc: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()


def encrypt(d: DevNode, name: str, text: bytes = b"payload") -> str:
    return str(ok(d, "POST", f"transit/encrypt/{name}", {"plaintext": b64(text)})["ciphertext"])


def decrypts(d: DevNode, name: str, ct: str, text: bytes = b"payload") -> bool:
    resp = d.call("POST", f"transit/decrypt/{name}", json={"ciphertext": ct})
    return resp.status_code == 200 and resp.json["data"]["plaintext"] == b64(text)


def test_backup_needs_exportable_and_plaintext_backup(d: DevNode) -> None:
    ok(d, "POST", "transit/keys/plain", {})
    ok(d, "POST", "transit/keys/expo-only", {"exportable": True})
    assert internal(d, "GET", "transit/backup/plain") == "exporting is disallowed on the policy"
    assert internal(d, "GET", "transit/backup/expo-only") == \
        "plaintext backup is disallowed on the policy"
    assert internal(d, "GET", "transit/backup/missing") == 'key "missing" not found'
    # A refused backup records nothing.
    assert ok(d, "GET", "transit/keys/expo-only").get("backup_info") is None


def test_round_trip_with_history(d: DevNode) -> None:
    ok(d, "POST", "transit/keys/hist", {**OPTS, "deletion_allowed": True})
    cts = []
    for _ in range(3):
        cts.append(encrypt(d, "hist"))
        ok(d, "POST", "transit/keys/hist/rotate")
    ok(d, "POST", "transit/keys/hist/config", {"min_decryption_version": 2,
                                                "deletion_allowed": True})
    backup = ok(d, "GET", "transit/backup/hist")["backup"]
    doc = json.loads(base64.b64decode(backup))
    assert list(doc) == ["policy", "archived_keys"]
    assert doc["policy"]["backup_info"]["version"] == 4
    assert len(doc["archived_keys"]["keys"]) == 5  # index 0 unused, then v1..v4
    assert sorted(doc["policy"]["keys"]) == ["2", "3", "4"]
    assert ok(d, "GET", "transit/keys/hist")["backup_info"]["version"] == 4
    ok(d, "DELETE", "transit/keys/hist")
    assert d.call("GET", "transit/keys/hist").status_code == 404
    ok(d, "POST", "transit/restore", {"backup": backup})
    read = ok(d, "GET", "transit/keys/hist")
    assert read["latest_version"] == 4 and read["min_decryption_version"] == 2
    assert read["restore_info"]["version"] == 4
    assert not decrypts(d, "hist", cts[0])  # below min_decryption_version
    assert all(decrypts(d, "hist", ct) for ct in cts[1:])
    ok(d, "POST", "transit/keys/hist/config", {"min_decryption_version": 1})
    assert decrypts(d, "hist", cts[0])  # the archive came back too
    # Restored under another name (URL), the same keys.
    ok(d, "POST", "transit/restore/hist-copy", {"backup": backup})
    assert decrypts(d, "hist-copy", cts[2])


def test_restore_onto_existing_key_needs_force(d: DevNode) -> None:
    ok(d, "POST", "transit/keys/a", OPTS)
    ok(d, "POST", "transit/keys/b", OPTS)
    ct_a, ct_b = encrypt(d, "a"), encrypt(d, "b")
    backup_a = ok(d, "GET", "transit/backup/a")["backup"]
    assert internal(d, "POST", "transit/restore/b", {"backup": backup_a}) == \
        'key "b" already exists'
    assert internal(d, "POST", "transit/restore", {"backup": backup_a}) == \
        'key "a" already exists'
    assert decrypts(d, "b", ct_b)  # untouched
    ok(d, "POST", "transit/restore/b", {"backup": backup_a, "force": True})
    assert decrypts(d, "b", ct_a) and not decrypts(d, "b", ct_b)


def test_bad_backups_are_refused_and_write_nothing(d: DevNode) -> None:
    ok(d, "POST", "transit/keys/src", OPTS)
    good = json.loads(base64.b64decode(ok(d, "GET", "transit/backup/src")["backup"]))
    assert error(d, "POST", "transit/restore", {}) == "'backup' must be supplied"
    assert error(d, "POST", "transit/restore/x", {"backup": ""}) == "'backup' must be supplied"
    assert internal(d, "POST", "transit/restore/x", {"backup": "%%%"}) == \
        "illegal base64 data at input byte 0"
    assert internal(d, "POST", "transit/restore/a/b", {"backup": blob(good)}) == \
        "key names cannot be paths"
    policy = good["policy"]
    entry = policy["keys"]["1"]
    tampered: list[dict[str, Any]] = [
        {"policy": {**policy, "type": 99}},
        {"policy": {**policy, "keys": {}}},
        {"policy": {**policy, "latest_version": 3}},
        {"policy": {**policy, "keys": {"1": {**entry, "key": "!!!"}}}},
        {"policy": {**policy, "keys": {"1": {**entry, "key": b64(b"short")}}}},
        {"policy": {**policy, "keys": {"1": {**entry, "time": "yesterday"}}}},
        {"policy": None},
        {"archived_keys": good["archived_keys"]},
    ]
    for i, doc in enumerate(tampered):
        text = internal(d, "POST", f"transit/restore/t{i}", {"backup": blob(doc)})
        assert text.startswith(("invalid backup", f'failed to restore the policy "t{i}"')), (
            i, text)
        assert d.call("GET", f"transit/keys/t{i}").status_code == 404, i
    for raw in (b"{not json", b"[]", b"null"):
        text = internal(d, "POST", "transit/restore/tj",
                        {"backup": base64.b64encode(raw).decode()})
        assert text.startswith(("invalid backup", "invalid character")), text
    assert d.call("GET", "transit/keys/tj").status_code == 404


def test_convergent_derived_key_survives(d: DevNode) -> None:
    ok(d, "POST", "transit/keys/conv", {**OPTS, "derived": True,
                                        "convergent_encryption": True})
    context = b64(b"ctx")
    body = {"plaintext": b64(b"same"), "context": context}
    ct = ok(d, "POST", "transit/encrypt/conv", body)["ciphertext"]
    ok(d, "POST", "transit/restore/conv2", {"backup": ok(d, "GET", "transit/backup/conv")
                                            ["backup"]})
    assert ok(d, "POST", "transit/encrypt/conv2", body)["ciphertext"] == ct
    read = ok(d, "GET", "transit/keys/conv2")
    assert read["derived"] is True and read["convergent_encryption"] is True
