"""The transit key model, its Go codecs and keysutil's JSON, against real OpenBao data.

``data/openbao_keys.json`` holds key rings exported from an OpenBao 2.7 dev server
(``backup/<name>`` of exportable keys with plaintext backup allowed) and ciphertexts
that server produced with them: decoding the ring here and decrypting OpenBao's
ciphertexts proves the codec, the KDF and the byte layout are Vault's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.engines.transit import policy_json
from strongroom.engines.transit.goencoding import Base64Error, atoi, b64decode
from strongroom.engines.transit.policy import KeyType, Policy, new_policy
from strongroom.errors import BadRequestError

FIXTURES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "openbao_keys.json").read_text())


# -- Go's decoders ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "offset"), [
    ("not base64", 3), ("aGk", 0), ("a", 0), ("aGk=x", 4), ("=aGk", 0), ("aG==x", 4),
    ("aGk\x00", 3), ("aé==", 1), ("aG=", 3), ("aG=a", 2)])
def test_b64decode_reports_go_offsets(text: str, offset: int) -> None:
    with pytest.raises(Base64Error) as err:
        b64decode(text)
    assert str(err.value) == f"illegal base64 data at input byte {offset}"


def test_b64decode_accepts_what_go_accepts() -> None:
    assert b64decode("aGVs\nbG8=\r\n") == b"hello"
    assert b64decode("") == b""
    assert b64decode("aGk=") == b"hi"
    for padded_past_a_quantum in ("AAAA====", "AAAA=", "QUJD="):  # Go refuses these
        with pytest.raises(Base64Error):
            b64decode(padded_past_a_quantum)
    assert b64decode("aGl=") == b"hi"  # non-zero trailing bits: Go's StdEncoding allows


def test_atoi_is_go_strconv() -> None:
    assert [atoi(t) for t in ("1", "+2", "-3", "007")] == [1, 2, -3, 7]
    for text in ("", " 1", "1_0", "x", "1.0", str(2**63)):
        with pytest.raises(ValueError):
            atoi(text)


# -- key model ----------------------------------------------------------------------------------

def test_xchacha20_poly1305_vector() -> None:
    """draft-irtf-cfrg-xchacha-03 A.3.1 (AEAD_XChaCha20_Poly1305)."""
    from strongroom.engines.transit.xchacha import XChaCha20Poly1305

    key = bytes(range(0x80, 0xA0))
    nonce = bytes.fromhex("404142434445464748494a4b4c4d4e4f5051525354555657")
    aad = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
    plain = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip "
             b"for the future, sunscreen would be it.")
    out = XChaCha20Poly1305(key).encrypt(nonce, plain, aad)
    assert out[-16:].hex() == "c0875924c1c7987947deafd8780acf49"
    assert out[:16].hex() == "bd6d179d3e83d43b9576579493c0e939"
    assert XChaCha20Poly1305(key).decrypt(nonce, out, aad) == plain


def test_key_type_numbers_and_predicates() -> None:
    assert [KeyType.from_name(n) for n in (
        "aes256-gcm96", "ecdsa-p256", "ed25519", "rsa-2048", "rsa-4096", "chacha20-poly1305",
        "ecdsa-p384", "ecdsa-p521", "aes128-gcm96", "rsa-3072", "hmac",
        "xchacha20-poly1305")] == list(KeyType)
    assert [int(k) for k in KeyType] == list(range(12))
    assert KeyType.RSA2048.encryption_supported and KeyType.RSA2048.signing_supported
    assert not KeyType.ED25519.encryption_supported and KeyType.ED25519.derivation_supported
    assert not KeyType.HMAC.signing_supported and not KeyType.HMAC.encryption_supported


def test_ciphertext_layout_is_nonce_ciphertext_tag() -> None:
    p = new_policy("k", KeyType.AES256_GCM96)
    ct = p.encrypt(b"payload", associated_data=b"ad")
    prefix, _, body = ct.rpartition(":")
    raw = base64.b64decode(body)
    assert prefix == "vault:v1" and len(raw) == 12 + 7 + 16
    key = p.keys[1].key
    assert key is not None
    assert AESGCM(key).decrypt(raw[:12], raw[12:], b"ad") == b"payload"
    with pytest.raises(BadRequestError, match="cipher: message authentication failed"):
        p.decrypt(ct)


def test_convergent_nonce_is_hmac_of_plaintext() -> None:
    p = new_policy("c", KeyType.AES256_GCM96, derived=True, convergent=True)
    ct = p.encrypt(b"same", context=b"ctx")
    assert ct == p.encrypt(b"same", context=b"ctx") != p.encrypt(b"same", context=b"ctx2")
    derived = p.derived_key(b"ctx", 1, 64)
    nonce = hmac.new(derived[32:], b"same", hashlib.sha256).digest()[:12]
    assert base64.b64decode(ct.split(":")[2])[:12] == nonce
    assert p.decrypt(ct, context=b"ctx") == b"same"
    with pytest.raises(BadRequestError, match="missing 'context'"):
        p.encrypt(b"x")


def test_legacy_counter_kdf() -> None:
    p = new_policy("l", KeyType.AES256_GCM96, derived=True)
    p.kdf = 0
    key = p.keys[1].key
    assert key is not None
    expected = hmac.new(key, b"\0\0\0\0ctx\0\0\x01\0", hashlib.sha256).digest()
    assert p.derived_key(b"ctx", 1) == expected
    assert p.decrypt(p.encrypt(b"v", context=b"ctx"), context=b"ctx") == b"v"


def test_rsa_is_oaep_sha256() -> None:
    p = new_policy("r", KeyType.RSA2048)
    ct = p.encrypt(b"secret")
    raw = base64.b64decode(ct.split(":")[2])
    key = p.keys[1].rsa_key
    assert key is not None
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    assert key.decrypt(raw, oaep) == b"secret"
    assert p.decrypt(ct) == b"secret"


def test_version_checks() -> None:
    p = new_policy("v", KeyType.CHACHA20_POLY1305)
    p.rotate()
    old = p.encrypt(b"a", version=1)
    assert old.startswith("vault:v1:")
    for version, message in ((-1, "negative"), (3, "higher than the latest"),):
        with pytest.raises(BadRequestError, match=message):
            p.encrypt(b"a", version=version)
    p.min_decryption_version = p.min_encryption_version = 2
    with pytest.raises(BadRequestError, match="less than the minimum encryption"):
        p.encrypt(b"a", version=1)
    with pytest.raises(BadRequestError, match="disallowed by policy"):
        p.decrypt(old)
    with pytest.raises(BadRequestError, match="version is too new"):
        p.decrypt("vault:v3:AAAA")
    for bad, message in (("v1:x", "no prefix"), ("vault:v1", "wrong number of fields"),
                         ("vault:vx:AA", "could not be decoded"),
                         ("vault:v2:@@", "could not decode base64"),
                         ("vault:v2:AAAA", "invalid ciphertext length")):
        with pytest.raises(BadRequestError, match=message):
            p.decrypt(bad)


# -- keysutil JSON --------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_openbao_keys_decode_and_decrypt_openbao_ciphertexts(name: str) -> None:
    fixture = FIXTURES[name]
    p = policy_json.policy_from_doc(fixture["backup"]["policy"])
    assert p.name == name and p.latest_version >= 1
    for item in fixture["ciphertexts"]:
        plain = p.decrypt(item["ciphertext"],
                          context=base64.b64decode(item["context"]) or None,
                          associated_data=base64.b64decode(item["associated_data"]) or None)
        assert plain == base64.b64decode(item["plaintext"])
    # Encoding gives back OpenBao's document, field for field and in Go's order.
    assert json.loads(policy_json.dumps(p)) == fixture["backup"]["policy"]
    assert list(json.loads(policy_json.dumps(p))) == list(fixture["backup"]["policy"])
    archive = policy_json.archive_loads(json.dumps(fixture["backup"]["archived_keys"]).encode())
    assert json.loads(policy_json.archive_dumps(archive)) == fixture["backup"]["archived_keys"]


# RSA-3072/4096 are slow to generate and encode as RSA-2048 does.
@pytest.mark.parametrize("key_type", [t for t in KeyType
                                      if t not in (KeyType.RSA3072, KeyType.RSA4096)])
def test_every_type_round_trips(key_type: KeyType) -> None:
    p = new_policy("x", key_type, key_size=64 if key_type is KeyType.HMAC else 0)
    p.auto_rotate_period = 7200
    again = policy_json.loads(policy_json.dumps(p))
    assert policy_json.dumps(policy_json.loads(policy_json.dumps(again))) == \
        policy_json.dumps(again)
    assert again.auto_rotate_period == 7200
    assert json.loads(policy_json.dumps(p))["auto_rotate_period"] == 7200 * 10**9
    if key_type.encryption_supported:
        assert again.decrypt(p.encrypt(b"hi")) == b"hi"


def test_go_times() -> None:
    when, nanos = policy_json.parse_time("2026-12-05T13:39:11.510349524Z")
    assert (when.microsecond, nanos) == (510349, 524)
    assert policy_json.format_time(when, nanos) == "2026-12-05T13:39:11.510349524Z"
    zero, _ = policy_json.parse_time("0001-01-01T00:00:00Z")
    assert policy_json.format_time(zero) == "0001-01-01T00:00:00Z"
    when, _ = policy_json.parse_time("2026-01-01T01:00:00.5+01:00")
    assert policy_json.format_time(when) == "2026-01-01T01:00:00.5+01:00"


def test_policy_type_is_not_a_dataclass_default_trap() -> None:
    a, b = Policy(name="a"), Policy(name="b")
    a.keys[1] = b.keys.get(1) or a.keys.get(1) or new_policy("z", KeyType.AES128_GCM96).keys[1]
    assert b.keys == {}


@pytest.mark.parametrize("key_type", [KeyType.AES256_GCM96, KeyType.ECDSA_P256,
                                      KeyType.ED25519, KeyType.RSA2048, KeyType.HMAC])
def test_repr_carries_no_key_material(key_type: KeyType) -> None:
    p = new_policy("r", key_type, key_size=32 if key_type is KeyType.HMAC else 0)
    text = repr(p)
    entry = p.keys[1]
    assert entry.hmac_key is not None
    for secret in (entry.key, entry.hmac_key):
        if secret is not None:
            assert repr(secret) not in text
            assert base64.b64encode(secret).decode() not in text
    if entry.ec_d is not None:
        assert str(entry.ec_d) not in text
    if entry.rsa_key is not None:
        assert str(entry.rsa_key.private_numbers().d) not in text
