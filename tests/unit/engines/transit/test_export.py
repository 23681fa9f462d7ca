"""``export/<type>/<name>[/<version>]`` over the HTTP edge of an in-process node."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from port_helpers import b64, error, import_key, internal, ok, transit_node

from tests.support.nodes import DevNode
from tests.support.transit_byok import new_key_material, public_pem


@pytest.fixture(scope="module")
def d() -> DevNode:
    return transit_node()


@pytest.mark.parametrize("key_type", ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305"])
def test_exported_key_is_the_one_that_encrypts(d: DevNode, key_type: str) -> None:
    name = f"gen-{key_type}"
    ok(d, "POST", f"transit/keys/{name}", {"type": key_type, "exportable": True})
    ok(d, "POST", f"transit/keys/{name}/rotate")
    keys = ok(d, "GET", f"transit/export/encryption-key/{name}")["keys"]
    assert sorted(keys) == ["1", "2"] and keys["1"] != keys["2"]
    ct = ok(d, "POST", f"transit/encrypt/{name}", {"plaintext": b64(b"hello")})["ciphertext"]
    blob = base64.b64decode(ct.split(":")[2])
    aead = (ChaCha20Poly1305 if key_type.startswith("chacha") else AESGCM)(
        base64.b64decode(keys["2"]))
    assert aead.decrypt(blob[:12], blob[12:], None) == b"hello"  # Vault's layout
    raw = ok(d, "GET", f"transit/export/encryption-key/{name}/2?format=raw")
    assert raw == {"name": name, "type": key_type, "keys": {"2": keys["2"]}}
    # hmac-key: every version has its own HMAC key, distinct from the encryption key.
    hmac_keys = ok(d, "GET", f"transit/export/hmac-key/{name}")["keys"]
    assert len(base64.b64decode(hmac_keys["1"])) == 32 and hmac_keys["1"] != keys["1"]


def test_version_selection(d: DevNode) -> None:
    ok(d, "POST", "transit/keys/ver", {"exportable": True})
    for _ in range(2):
        ok(d, "POST", "transit/keys/ver/rotate")
    every = ok(d, "GET", "transit/export/encryption-key/ver")["keys"]
    assert sorted(every) == ["1", "2", "3"]
    assert ok(d, "GET", "transit/export/encryption-key/ver/latest")["keys"] == {"3": every["3"]}
    assert ok(d, "GET", "transit/export/encryption-key/ver/v2")["keys"] == {"2": every["2"]}
    ok(d, "POST", "transit/keys/ver/config", {"min_decryption_version": 2})
    assert sorted(ok(d, "GET", "transit/export/encryption-key/ver")["keys"]) == ["2", "3"]
    assert error(d, "GET", "transit/export/encryption-key/ver/1") == \
        "version for export is below minimum decryption version"
    assert error(d, "GET", "transit/export/encryption-key/ver/0") == \
        "version for export is below minimum decryption version"
    assert error(d, "GET", "transit/export/encryption-key/ver/9") == \
        "version does not exist or cannot be found"
    for bad in ("x", "v", "1.5", "0x2"):
        assert error(d, "GET", f"transit/export/encryption-key/ver/{bad}") == \
            "invalid key version"


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521",
                                      "rsa-2048"])
def test_asymmetric_formats(d: DevNode, key_type: str) -> None:
    material, key = new_key_material(key_type)
    name = f"asym-{key_type}"
    import_key(d, name, key_type, material, exportable=True)
    signing = "encryption-key" if key_type.startswith("rsa") else "signing-key"
    der = ok(d, "GET", f"transit/export/{signing}/{name}?format=der")["keys"]["1"]
    assert base64.b64decode(der) == material  # PKCS#8 DER, the bytes imported
    pem = ok(d, "GET", f"transit/export/{signing}/{name}?format=pem")["keys"]["1"]
    assert pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    default = ok(d, "GET", f"transit/export/{signing}/{name}")["keys"]["1"]
    pub = ok(d, "GET", f"transit/export/public-key/{name}")["keys"]["1"]
    if key_type == "ed25519":
        seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
        raw_pub = key.public_key().public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)
        assert base64.b64decode(default) == seed + raw_pub  # Go's 64-byte private key
        assert pub == b64(raw_pub)
        assert isinstance(serialization.load_pem_private_key(pem.encode(), None),
                          ed25519.Ed25519PrivateKey)
    elif key_type.startswith("ecdsa"):
        assert default.startswith("-----BEGIN EC PRIVATE KEY-----\n")
        assert not default.endswith("\n")  # OpenBao trims EC PEM
        loaded = serialization.load_pem_private_key(default.encode(), None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        assert loaded.private_numbers() == key.private_numbers()
        assert pub == public_pem(key).strip()
    else:
        assert default.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
        assert default.endswith("-----\n")  # OpenBao keeps the RSA PEM's newline
        loaded = serialization.load_pem_private_key(default.encode(), None)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        assert loaded.private_numbers() == key.private_numbers()
        assert pub == public_pem(key)
        # rsa keys also export as signing keys, identically.
        assert ok(d, "GET", f"transit/export/signing-key/{name}")["keys"]["1"] == default
    pub_der = ok(d, "GET", f"transit/export/public-key/{name}?format=der")["keys"]["1"]
    assert serialization.load_der_public_key(base64.b64decode(pub_der)).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode() == public_pem(key)


def test_refusals(d: DevNode) -> None:
    ok(d, "POST", "transit/keys/locked", {})
    ok(d, "POST", "transit/keys/open", {"exportable": True})
    ok(d, "POST", "transit/keys/locked-ec", {"type": "ecdsa-p256"})
    for export_type in ("encryption-key", "signing-key", "hmac-key"):
        assert error(d, "GET", f"transit/export/{export_type}/locked") == \
            "private key material is not exportable"
    assert error(d, "GET", "transit/export/signing-key/locked-ec") == \
        "private key material is not exportable"
    # A public key is never secret: exportable or not.
    assert ok(d, "GET", "transit/export/public-key/locked-ec")["keys"]["1"].startswith(
        "-----BEGIN PUBLIC KEY-----")
    assert error(d, "GET", "transit/export/foo-key/open") == "invalid export type: foo-key"
    assert error(d, "GET", "transit/export/encryption-key/open?format=xx") == \
        "invalid format: xx"
    assert internal(d, "GET", "transit/export/encryption-key/open?format=der") == \
        "unknown format for HMAC key; supported values are `` or `raw`"
    assert error(d, "GET", "transit/export/signing-key/open") == \
        "signing not supported for the key"
    assert internal(d, "GET", "transit/export/public-key/open") == \
        "unknown key type aes256-gcm96 for export type public-key"
    ok(d, "POST", "transit/keys/open-ec", {"type": "ecdsa-p256", "exportable": True})
    assert error(d, "GET", "transit/export/encryption-key/open-ec") == \
        "encryption not supported for the key"
    resp = d.call("GET", "transit/export/encryption-key/missing")
    assert resp.status_code == 404 and resp.json == {"errors": []}
    # Only reads: no write verb exports anything.
    assert d.call("POST", "transit/export/encryption-key/open").status_code == 405


def test_key_material_only_through_export(d: DevNode) -> None:
    material = os.urandom(32)
    import_key(d, "secretive", "aes256-gcm96", material)
    encoded = b64(material)
    for path in ("transit/keys/secretive", "transit/keys?list=true"):
        assert encoded not in d.call("GET", path).text
    assert error(d, "GET", "transit/export/encryption-key/secretive") == \
        "private key material is not exportable"
