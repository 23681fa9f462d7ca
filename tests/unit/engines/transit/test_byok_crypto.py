"""BYOK unwrap, key parsing and the backup blob codec, without a server."""

from __future__ import annotations

import base64
import json
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from strongroom.engines.transit import backup_codec, byok
from strongroom.engines.transit.keytypes import TransitInternalError
from strongroom.errors import BadRequestError
from tests.support.transit_byok import new_key_material, public_pem, wrap_for_import


@pytest.fixture(scope="module")
def wrapping() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, pem.decode()


@pytest.mark.parametrize("hash_function", ["SHA1", "sha224", "SHA256", "SHA384", "sha512"])
def test_unwrap_round_trip_every_hash(wrapping: tuple[rsa.RSAPrivateKey, str],
                                      hash_function: str) -> None:
    priv, pem = wrapping
    target = os.urandom(32)
    ct = base64.b64decode(wrap_for_import(pem, target, hash_function))
    assert bytes(byok.unwrap(ct, priv, byok.oaep_hash(hash_function))) == target


def test_unwrap_refuses_bad_inputs(wrapping: tuple[rsa.RSAPrivateKey, str]) -> None:
    priv, pem = wrapping
    sha256 = byok.oaep_hash("SHA256")
    ct = bytearray(base64.b64decode(wrap_for_import(pem, os.urandom(32))))
    with pytest.raises(TransitInternalError, match="provided ciphertext is too short"):
        byok.unwrap(bytes(ct[:512]), priv, sha256)
    with pytest.raises(TransitInternalError, match="crypto/rsa: decryption error"):
        byok.unwrap(bytes(ct), priv, byok.oaep_hash("SHA1"))  # wrapped with SHA-256
    flipped = bytearray(ct)
    flipped[10] ^= 1
    with pytest.raises(TransitInternalError, match="crypto/rsa: decryption error"):
        byok.unwrap(bytes(flipped), priv, sha256)
    tail = bytearray(ct)
    tail[-1] ^= 1  # the KWP integrity check must catch a changed wrapped key
    with pytest.raises(TransitInternalError, match="kwp: unwrap failed integrity check"):
        byok.unwrap(bytes(tail), priv, sha256)
    other = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    with pytest.raises(TransitInternalError, match="decryption error"):
        byok.unwrap(bytes(ct), other, sha256)
    short_eph = base64.b64decode(wrap_for_import(pem, os.urandom(32), ephemeral=os.urandom(16)))
    with pytest.raises(TransitInternalError, match="expected ephemeral AES key to be 256-bit"):
        byok.unwrap(short_eph, priv, sha256)
    with pytest.raises(BadRequestError, match="unknown hash function: MD5"):
        byok.oaep_hash("MD5")


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521",
                                      "rsa-2048"])
def test_parse_private_and_public(key_type: str) -> None:
    der, key = new_key_material(key_type)
    private = byok.parse_asymmetric(key_type, der, True)
    public = byok.parse_asymmetric(key_type, public_pem(key).encode(), False)
    # Vault keeps no formatted public key for RSA entries (rsa_public_key instead).
    assert private.public_key == public.public_key
    assert bool(private.public_key) is not key_type.startswith("rsa")
    if key_type == "ed25519":
        assert len(private.key) == 64 and public.key == b""
    elif key_type.startswith("ecdsa"):
        assert private.ec_d is not None and public.ec_d is None
        assert (private.ec_x, private.ec_y) == (public.ec_x, public.ec_y)
    else:
        assert private.rsa_key is not None and public.rsa_key is None
        assert public.rsa_public_key is not None and private.rsa_public_key is not None
        assert public.rsa_public_key.public_numbers() == private.rsa_public_key.public_numbers()


def test_parse_refuses_mismatches() -> None:
    p384, _ = new_key_material("ecdsa-p384")
    with pytest.raises(TransitInternalError, match="invalid curve: expected P-256, got P-384"):
        byok.parse_asymmetric("ecdsa-p256", p384, True)
    ed, _ = new_key_material("ed25519")
    with pytest.raises(TransitInternalError, match="invalid key type: expected ecdsa-p256"):
        byok.parse_asymmetric("ecdsa-p256", ed, True)
    r2048, _ = new_key_material("rsa-2048")
    with pytest.raises(TransitInternalError, match="expected 384 bytes, got 256 bytes"):
        byok.parse_asymmetric("rsa-3072", r2048, True)
    with pytest.raises(TransitInternalError, match="error parsing asymmetric key"):
        byok.parse_asymmetric("rsa-2048", b"y" * 40, True)
    with pytest.raises(TransitInternalError, match="not in PEM format"):
        byok.parse_asymmetric("ed25519", b"nope", False)


def test_backup_codec_round_trip_and_refusals() -> None:
    policy = {"name": "k", "keys": {"1": {"rsa_key": {"N": 2**2047 + 1}}}, "type": 3}
    blob = backup_codec.encode(json.dumps(policy, separators=(",", ":")).encode(), None)
    raw = base64.b64decode(blob)
    assert raw.endswith(b"}\n") and raw.startswith(b'{"policy":{"name":"k"')
    back = backup_codec.decode(blob)
    assert back.name == "k" and back.policy == policy and back.archive == {"keys": []}
    assert back.policy["keys"]["1"]["rsa_key"]["N"] == 2**2047 + 1  # big ints exact
    with pytest.raises(TransitInternalError, match="illegal base64 data at input byte 0"):
        backup_codec.decode("%%%")
    for raw, text in ((b"{not json", "invalid character 'n' looking for beginning of object "
                                      "key string"), (b"ABC", "invalid character 'A' looking "
                                                              "for beginning of value"),
                      (b"", "unexpected end of JSON input")):
        with pytest.raises(TransitInternalError, match=f"^{text}$"):
            backup_codec.decode(base64.b64encode(raw).decode())
    for bad in (b"[]", b'{"policy": null}', b'{"policy": {"keys": {}}}',
                b'{"policy": {"name": "k"}, "archived_keys": 5}'):
        with pytest.raises(TransitInternalError, match="invalid backup"):
            backup_codec.decode(base64.b64encode(bad).decode())
