"""BYOK: ``wrapping_key``, ``keys/<name>/import`` and ``import_version``, in process."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from port_helpers import b64, error, import_key, internal, ok, transit_node, wrapping_pem

from tests.support.nodes import DevNode
from tests.support.transit_byok import new_key_material, public_pem, wrap_for_import


@pytest.fixture(scope="module")
def d() -> DevNode:
    return transit_node()


def test_wrapping_key_is_one_rsa_4096_key(d: DevNode) -> None:
    pem = wrapping_pem(d)
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 4096
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n") and pem.endswith("-----END "
                                                                           "PUBLIC KEY-----\n")
    assert wrapping_pem(d) == pem
    # Not a transit key of its own: it does not show among the mount's keys.
    assert d.call("GET", "transit/keys/import/wrapping-key").status_code in (404, 405)
    assert d.call("POST", "transit/wrapping_key").status_code == 405


@pytest.mark.parametrize("key_type", ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305"])
@pytest.mark.parametrize("hash_function", ["SHA256", "SHA1", "sha512"])
def test_imported_key_encrypts(d: DevNode, key_type: str, hash_function: str) -> None:
    material, _ = new_key_material(key_type)
    name = f"imp-{key_type}-{hash_function}"
    ok(d, "POST", f"transit/keys/{name}/import", {
        "ciphertext": wrap_for_import(wrapping_pem(d), material, hash_function),
        "hash_function": hash_function, "type": key_type, "exportable": True})
    read = ok(d, "GET", f"transit/keys/{name}")
    assert read["type"] == key_type and read["imported_key"] is True
    ct = ok(d, "POST", f"transit/encrypt/{name}", {"plaintext": b64(b"x")})["ciphertext"]
    assert ok(d, "POST", f"transit/decrypt/{name}", {"ciphertext": ct})["plaintext"] == b64(b"x")
    assert ok(d, "GET", f"transit/export/encryption-key/{name}")["keys"] == {"1": b64(material)}


def test_hmac_key_import(d: DevNode) -> None:
    material = os.urandom(48)
    import_key(d, "imp-hmac", "hmac", material, exportable=True)
    assert ok(d, "GET", "transit/export/hmac-key/imp-hmac")["keys"] == {"1": b64(material)}
    assert internal(d, "POST", "transit/keys/imp-hmac2/import", {
        "ciphertext": wrap_for_import(wrapping_pem(d), os.urandom(16)), "type": "hmac"}) == \
        "error importing key: invalid key size 16 bytes for key type hmac"


def test_derived_import_uses_context(d: DevNode) -> None:
    import_key(d, "imp-der", "aes256-gcm96", os.urandom(32), derived=True)
    assert ok(d, "GET", "transit/keys/imp-der")["derived"] is True
    ctx = b64(b"c1")
    ct = ok(d, "POST", "transit/encrypt/imp-der", {"plaintext": b64(b"x"),
                                                  "context": ctx})["ciphertext"]
    assert ok(d, "POST", "transit/decrypt/imp-der", {"ciphertext": ct, "context": ctx}
              )["plaintext"] == b64(b"x")
    assert d.call("POST", "transit/decrypt/imp-der", json={
        "ciphertext": ct, "context": b64(b"c2")}).status_code == 400


def test_public_key_import_then_private_half(d: DevNode) -> None:
    _, key = new_key_material("ecdsa-p256")
    ok(d, "POST", "transit/keys/pub-ec/import", {"public_key": public_pem(key),
                                                 "type": "ecdsa-p256", "exportable": True})
    assert ok(d, "GET", "transit/export/signing-key/pub-ec")["keys"] == {"1": ""}
    assert ok(d, "GET", "transit/export/public-key/pub-ec")["keys"]["1"] == \
        public_pem(key).strip()
    # Another key's private half does not fit version 1.
    other, _ = new_key_material("ecdsa-p256")
    assert internal(d, "POST", "transit/keys/pub-ec/import_version", {
        "ciphertext": wrap_for_import(wrapping_pem(d), other), "version": 1}) == \
        "cannot import key, key pair does not match"
    mine = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    ok(d, "POST", "transit/keys/pub-ec/import_version", {
        "ciphertext": wrap_for_import(wrapping_pem(d), mine), "version": 1})
    assert ok(d, "GET", "transit/keys/pub-ec")["latest_version"] == 1
    der = ok(d, "GET", "transit/export/signing-key/pub-ec?format=der")["keys"]["1"]
    assert base64.b64decode(der) == mine
    assert internal(d, "POST", "transit/keys/pub-ec/import_version", {
        "ciphertext": wrap_for_import(wrapping_pem(d), mine), "version": 1}) == \
        "private key imported, key version cannot be updated"


def test_import_version_adds_versions(d: DevNode) -> None:
    first, second = os.urandom(32), os.urandom(32)
    import_key(d, "iv", "aes256-gcm96", first, exportable=True)
    ok(d, "POST", "transit/keys/iv/import_version",
       {"ciphertext": wrap_for_import(wrapping_pem(d), second)})
    assert ok(d, "GET", "transit/export/encryption-key/iv")["keys"] == {
        "1": b64(first), "2": b64(second)}
    assert internal(d, "POST", "transit/keys/iv/import_version", {
        "ciphertext": wrap_for_import(wrapping_pem(d), second), "version": 9}) == \
        "no such key version"
    assert internal(d, "POST", "transit/keys/iv/import_version", {
        "ciphertext": wrap_for_import(wrapping_pem(d), second), "version": 1}) == \
        "provided type does not support importing key versions"


def test_bad_imports(d: DevNode) -> None:
    pem = wrapping_pem(d)
    key = os.urandom(32)
    good = wrap_for_import(pem, key)
    raw = base64.b64decode(good)
    ok(d, "POST", "transit/keys/exists", {})
    cases = {
        "illegal base64 data at input byte 0": {"ciphertext": "%%%"},
        "provided ciphertext is too short": {"ciphertext": b64(raw[:512])},
        "crypto/rsa: decryption error": {"ciphertext": b64(b"x" * 600)},
        "kwp: wrapped key size too small": {"ciphertext": b64(raw[:520])},
        "kwp: wrapped key size must be a multiple of 8 bytes": {"ciphertext": b64(raw[:-3])},
        "unknown hash function: MD5": {"ciphertext": good, "hash_function": "MD5"},
        "unknown key type: des": {"ciphertext": good, "type": "des"},
        "import cannot be used on keys with convergent encryption enabled": {
            "ciphertext": good, "convergent_encryption": True},
        "allow_rotation must be set to true if auto-rotation is enabled": {
            "ciphertext": good, "auto_rotate_period": "1h"},
        "provided type does not support public_key import": {"public_key": "x"},
        "error importing key: invalid key size 16 bytes for key type aes256-gcm96": {
            "ciphertext": wrap_for_import(pem, key[:16])},
        "error importing key: error parsing public key: not in PEM format": {
            "public_key": "nope", "type": "ed25519"},
        "error importing key: invalid curve: expected P-256, got P-384": {
            "ciphertext": wrap_for_import(pem, new_key_material("ecdsa-p384")[0]),
            "type": "ecdsa-p256"},
    }
    for text, body in cases.items():
        check = error if text.startswith("unknown") else internal  # OpenBao's 400s
        assert check(d, "POST", "transit/keys/bad/import", body) == text, body
    # Wrapped for the wrong key (another server's), or with another OAEP hash.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    foreign = wrap_for_import(stranger.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
        key)
    assert internal(d, "POST", "transit/keys/bad/import", {"ciphertext": foreign}) == \
        "crypto/rsa: decryption error"
    assert internal(d, "POST", "transit/keys/bad/import", {
        "ciphertext": wrap_for_import(pem, key, "SHA1")}) == "crypto/rsa: decryption error"
    tampered = bytearray(raw)
    tampered[-3] ^= 0x40
    assert internal(d, "POST", "transit/keys/bad/import", {"ciphertext": b64(bytes(tampered))}
                    ) == "kwp: unwrap failed integrity check"
    assert d.call("GET", "transit/keys/bad").status_code == 404  # nothing half-made
    assert internal(d, "POST", "transit/keys/exists/import", {"ciphertext": good}) == (
        "the import path cannot be used with an existing key; use import-version to "
        "rotate an existing imported key")
    assert internal(d, "POST", "transit/keys/none/import_version", {"ciphertext": good}) == \
        "no key found with name none; to import a new key, use the import/ endpoint"
    assert internal(d, "POST", "transit/keys/exists/import_version", {"ciphertext": good}) == \
        "the import_version endpoint can only be used with an imported key"
