"""Transit's wire formats against OpenBao 2.7, both ways, with the same key material.

Both servers run side by side (Strongroom dev with 2 workers, OpenBao dev). The same
key is imported into each through BYOK, wrapped for each server's own wrapping key
(``tests.support.transit_byok``, what ``bao transit import`` does); then what one
server encrypts the other decrypts, for every encryption key type, derived keys with a
context, and RSA. Convergent keys cannot be imported (Vault refuses), so their key
travels by backup: OpenBao's backup restored into Strongroom must produce the very
same ciphertext for the same plaintext and context, and the reverse. Backups taken
from OpenBao (every key type, rotated keys with an archive, a raised
``min_decryption_version``) restore into Strongroom, decrypt OpenBao's ciphertexts and
export the same key bytes; Strongroom's backups restore into OpenBao the same way.
Exports of an imported key are byte for byte equal in every format.

Bad inputs get the same status and the same words from both, OpenBao's plain-error
500s (go-multierror's "1 error occurred: ...") included, as the rest of the transit
engine answers them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.support import requires
from tests.support.servers import ServerProcess, bao_dev_server, strongroom_dev_server
from tests.support.transit_byok import new_key_material, wrap_for_import

ROOT = "root"
ENCRYPTION_TYPES = ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305"]
ALL_TYPES = [*ENCRYPTION_TYPES, "ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521",
             "rsa-2048", "rsa-3072", "rsa-4096", "hmac"]
ASYMMETRIC = ["ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048"]
PLAINTEXT = base64.b64encode(b"the same bytes on both sides \x00\xff").decode()
CONTEXT = base64.b64encode(b"tenant-42").decode()


class Api:
    def __init__(self, server: ServerProcess, tag: str) -> None:
        self.url, self.tag = server.url, tag
        self.session = requests.Session()
        self.session.headers["X-Vault-Token"] = ROOT

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        resp = self.session.request(method, f"{self.url}/v1/{path}", json=body, timeout=120)
        return resp.status_code, (resp.json() if resp.content else None)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, doc = self.call(method, path, body)
        assert status in (200, 204), (self.tag, method, path, status, doc)
        return (doc or {}).get("data")

    def wrapping_key(self) -> str:
        return str(self.ok("GET", "transit/wrapping_key")["public_key"])

    def import_key(self, name: str, key_type: str, material: bytes, **options: Any) -> None:
        ct = wrap_for_import(self.wrapping_key(), material)
        self.ok("POST", f"transit/keys/{name}/import",
                {"ciphertext": ct, "type": key_type, **options})

    def encrypt(self, name: str, **extra: Any) -> str:
        return str(self.ok("POST", f"transit/encrypt/{name}",
                           {"plaintext": PLAINTEXT, **extra})["ciphertext"])

    def decrypt(self, name: str, ciphertext: str, **extra: Any) -> str:
        return str(self.ok("POST", f"transit/decrypt/{name}",
                           {"ciphertext": ciphertext, **extra})["plaintext"])

    def backup(self, name: str) -> str:
        return str(self.ok("GET", f"transit/backup/{name}")["backup"])

    def export(self, export_type: str, name: str, fmt: str = "") -> dict[str, str]:
        query = f"?format={fmt}" if fmt else ""
        return dict(self.ok("GET", f"transit/export/{export_type}/{name}{query}")["keys"])


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Api]]:
    requires.bao()
    with strongroom_dev_server(tmp_path_factory.mktemp("sr"), root_token=ROOT) as ours, \
            bao_dev_server(tmp_path_factory.mktemp("bao"), root_token=ROOT) as theirs:
        sr, bao = Api(ours, "strongroom"), Api(theirs, "openbao")
        for api in (sr, bao):
            api.ok("POST", "sys/mounts/transit", {"type": "transit"})
        yield sr, bao


def both_ways(sr: Api, bao: Api, name: str, **extra: Any) -> None:
    """Each server decrypts what the other encrypted (and itself, as a control)."""
    for enc, dec in ((bao, sr), (sr, bao)):
        ct = enc.encrypt(name, **extra)
        assert re.fullmatch(r"vault:v1:[A-Za-z0-9+/]+=*", ct), (enc.tag, ct)
        assert dec.decrypt(name, ct, **extra) == PLAINTEXT, (enc.tag, "->", dec.tag)


@pytest.mark.parametrize("key_type", ENCRYPTION_TYPES)
def test_imported_key_encrypts_across(servers: tuple[Api, Api], key_type: str) -> None:
    sr, bao = servers
    material, _ = new_key_material(key_type)
    name = f"imp-{key_type}"
    for api in servers:
        api.import_key(name, key_type, material, exportable=True)
    both_ways(sr, bao, name)
    # Associated data is part of the AEAD on both sides.
    aad = base64.b64encode(b"header").decode()
    both_ways(sr, bao, name, associated_data=aad)
    # And the key itself is the same: export gives the bytes that went in.
    expected = {"1": base64.b64encode(material).decode()}
    assert sr.export("encryption-key", name) == bao.export("encryption-key", name) == expected


def _legacy_kdf(key: bytes, context: bytes) -> bytes:
    """keysutil's kdf 0: one round of the NIST SP 800-108 counter KDF, HMAC-SHA256."""
    return hmac.new(key, b"\0\0\0\0" + context + (256).to_bytes(4, "big"),
                    hashlib.sha256).digest()


@pytest.mark.parametrize("key_type", ["aes256-gcm96", "chacha20-poly1305"])
def test_imported_derived_key_with_context(servers: tuple[Api, Api], key_type: str) -> None:
    # An imported derived key keeps kdf 0 (the HMAC-SHA256 counter KDF) in OpenBao.
    sr, bao = servers
    material, _ = new_key_material(key_type)
    name = f"der-{key_type}"
    for api in servers:
        api.import_key(name, key_type, material, derived=True)
        assert api.ok("GET", f"transit/keys/{name}")["kdf"] == "hmac-sha256-counter"
    both_ways(sr, bao, name, context=CONTEXT)
    other = base64.b64encode(b"tenant-43").decode()
    for enc, dec in ((bao, sr), (sr, bao)):
        ct = enc.encrypt(name, context=CONTEXT)
        status, _ = dec.call("POST", f"transit/decrypt/{name}", {"ciphertext": ct,
                                                                 "context": other})
        assert status == 400, dec.tag  # another context is another key


def test_imported_derived_aes128_encrypts_with_a_prefix_of_the_kdf(
        servers: tuple[Api, Api]) -> None:
    """kdf 0 yields 32 bytes; an aes128 key encrypts with the first 16 (both servers), and
    decryption checks the full length and fails (OpenBao's own, reproduced)."""
    sr, bao = servers
    material, _ = new_key_material("aes128-gcm96")
    for api in servers:
        api.import_key("der-aes128", "aes128-gcm96", material, derived=True)
    key = _legacy_kdf(material, base64.b64decode(CONTEXT))[:16]
    for api in servers:
        blob = base64.b64decode(api.encrypt("der-aes128", context=CONTEXT).split(":")[2])
        assert AESGCM(key).decrypt(blob[:12], blob[12:], None) == base64.b64decode(PLAINTEXT)


def test_imported_derived_aes128_decrypt_fails_as_openbao(servers: tuple[Api, Api]) -> None:
    sr, bao = servers
    material, _ = new_key_material("aes128-gcm96")
    for api in servers:
        api.import_key("der-aes128-dec", "aes128-gcm96", material, derived=True)
    ct = bao.encrypt("der-aes128-dec", context=CONTEXT)
    body = {"ciphertext": ct, "context": CONTEXT}
    assert _answer(*sr.call("POST", "transit/decrypt/der-aes128-dec", body)) == \
        _answer(*bao.call("POST", "transit/decrypt/der-aes128-dec", body)) == (
        500, ["1 error occurred:\n\t* could not derive enc key, length not correct\n\n"])


def test_imported_rsa_key_encrypts_across(servers: tuple[Api, Api]) -> None:
    sr, bao = servers
    material, _ = new_key_material("rsa-2048")
    for api in servers:
        api.import_key("imp-rsa", "rsa-2048", material, exportable=True)
    both_ways(sr, bao, "imp-rsa")
    for fmt in ("", "der", "pem"):
        assert (sr.export("encryption-key", "imp-rsa", fmt)
                == bao.export("encryption-key", "imp-rsa", fmt))


@pytest.mark.parametrize("key_type", ASYMMETRIC)
def test_imported_asymmetric_key_exports_the_same(servers: tuple[Api, Api],
                                                  key_type: str) -> None:
    sr, bao = servers
    material, _ = new_key_material(key_type)
    name = f"asym-{key_type}"
    for api in servers:
        api.import_key(name, key_type, material, exportable=True)
    for fmt in ("", "der", "pem"):
        assert sr.export("signing-key", name, fmt) == bao.export("signing-key", name, fmt)
        assert sr.export("public-key", name, fmt) == bao.export("public-key", name, fmt)
    assert sr.ok("GET", f"transit/keys/{name}")["keys"]["1"]["public_key"] == \
        bao.ok("GET", f"transit/keys/{name}")["keys"]["1"]["public_key"]


def test_convergent_key_travels_by_backup_and_gives_the_same_ciphertext(
        servers: tuple[Api, Api]) -> None:
    sr, bao = servers
    opts = {"derived": True, "convergent_encryption": True, "exportable": True,
            "allow_plaintext_backup": True}
    bao.ok("POST", "transit/keys/conv-from-bao", opts)
    sr.ok("POST", "transit/restore", {"backup": bao.backup("conv-from-bao")})
    sr.ok("POST", "transit/keys/conv-from-sr", opts)
    bao.ok("POST", "transit/restore", {"backup": sr.backup("conv-from-sr")})
    for name in ("conv-from-bao", "conv-from-sr"):
        ours, theirs = sr.encrypt(name, context=CONTEXT), bao.encrypt(name, context=CONTEXT)
        assert ours == theirs, name  # convergent: deterministic, and the same on both
        assert sr.decrypt(name, theirs, context=CONTEXT) == PLAINTEXT
        assert bao.decrypt(name, ours, context=CONTEXT) == PLAINTEXT


def _bao_key_with_history(bao: Api, name: str, key_type: str) -> None:
    body: dict[str, Any] = {"type": key_type, "exportable": True,
                            "allow_plaintext_backup": True}
    if key_type == "hmac":
        body["key_size"] = 48
    bao.ok("POST", f"transit/keys/{name}", body)


@pytest.mark.parametrize("key_type", ALL_TYPES)
def test_openbao_backup_restores_into_strongroom(servers: tuple[Api, Api],
                                                  key_type: str) -> None:
    sr, bao = servers
    name = f"bb-{key_type}"
    _bao_key_with_history(bao, name, key_type)
    supports_encryption = key_type in ENCRYPTION_TYPES or key_type.startswith("rsa")
    old_ct = bao.encrypt(name) if supports_encryption else ""
    bao.ok("POST", f"transit/keys/{name}/rotate")
    bao.ok("POST", f"transit/keys/{name}/rotate")
    backup = bao.backup(name)
    sr.ok("POST", "transit/restore", {"backup": backup})
    theirs, ours = bao.ok("GET", f"transit/keys/{name}"), sr.ok("GET", f"transit/keys/{name}")
    for field in ("type", "latest_version", "min_decryption_version", "exportable",
                  "allow_plaintext_backup", "derived", "keys"):
        assert ours.get(field) == theirs.get(field), field  # hmac keys show no "keys"
    export_types = ["hmac-key"]
    if supports_encryption:
        export_types.append("encryption-key")
        assert sr.decrypt(name, old_ct) == PLAINTEXT  # version 1, made by OpenBao
        assert bao.decrypt(name, sr.encrypt(name)) == PLAINTEXT
    if key_type in ASYMMETRIC or key_type.startswith("rsa") or key_type.startswith("ecdsa"):
        export_types += ["signing-key", "public-key"]
    for export_type in export_types:
        assert sr.export(export_type, name) == bao.export(export_type, name), export_type
    _sign_and_hmac_across(sr, bao, name, key_type)


def _sign_and_hmac_across(sr: Api, bao: Api, name: str, key_type: str) -> None:
    """The same restored key: identical HMACs (the per-version hmac_key travels in the
    backup), and each server verifies the other's signatures."""
    body = {"input": PLAINTEXT}
    assert sr.ok("POST", f"transit/hmac/{name}", body)["hmac"] == \
        bao.ok("POST", f"transit/hmac/{name}", body)["hmac"]
    if key_type in ENCRYPTION_TYPES or key_type == "hmac":
        return
    for signer, verifier in ((bao, sr), (sr, bao)):
        sig = signer.ok("POST", f"transit/sign/{name}", body)["signature"]
        assert verifier.ok("POST", f"transit/verify/{name}", {**body, "signature": sig}
                           )["valid"] is True, (signer.tag, verifier.tag)


@pytest.mark.parametrize("key_type", ALL_TYPES)
def test_strongroom_backup_restores_into_openbao(servers: tuple[Api, Api],
                                                  key_type: str) -> None:
    sr, bao = servers
    name = f"sb-{key_type}"
    body: dict[str, Any] = {"type": key_type, "exportable": True,
                            "allow_plaintext_backup": True}
    if key_type == "hmac":
        body["key_size"] = 40
    sr.ok("POST", f"transit/keys/{name}", body)
    supports_encryption = key_type in ENCRYPTION_TYPES or key_type.startswith("rsa")
    old_ct = sr.encrypt(name) if supports_encryption else ""
    sr.ok("POST", f"transit/keys/{name}/rotate")
    bao.ok("POST", "transit/restore", {"backup": sr.backup(name)})
    theirs, ours = bao.ok("GET", f"transit/keys/{name}"), sr.ok("GET", f"transit/keys/{name}")
    for field in ("type", "latest_version", "min_decryption_version", "keys"):
        assert ours.get(field) == theirs.get(field), field
    if supports_encryption:
        assert bao.decrypt(name, old_ct) == PLAINTEXT
        assert sr.decrypt(name, bao.encrypt(name)) == PLAINTEXT
    assert sr.export("hmac-key", name) == bao.export("hmac-key", name)
    _sign_and_hmac_across(sr, bao, name, key_type)


def test_trimmed_archive_and_min_decryption_version_survive_both_ways(
        servers: tuple[Api, Api]) -> None:
    sr, bao = servers
    bao.ok("POST", "transit/keys/hist", {"exportable": True, "allow_plaintext_backup": True})
    cts = []
    for _ in range(4):
        cts.append(bao.encrypt("hist"))
        bao.ok("POST", "transit/keys/hist/rotate")
    bao.ok("POST", "transit/keys/hist/config", {"min_decryption_version": 3})
    sr.ok("POST", "transit/restore/hist-sr", {"backup": bao.backup("hist")})
    for version, ct in enumerate(cts, start=1):
        status, doc = sr.call("POST", "transit/decrypt/hist-sr", {"ciphertext": ct})
        if version < 3:
            assert status == 400, doc  # archived, below min_decryption_version
        else:
            assert doc["data"]["plaintext"] == PLAINTEXT
    # Lowering min_decryption_version brings the archived versions back, on our side.
    sr.ok("POST", "transit/keys/hist-sr/config", {"min_decryption_version": 1})
    assert sr.decrypt("hist-sr", cts[0]) == PLAINTEXT
    bao.ok("POST", "transit/restore/hist-back", {"backup": sr.backup("hist-sr")})
    assert bao.decrypt("hist-back", cts[0]) == PLAINTEXT
    assert sr.export("encryption-key", "hist-sr") == bao.export("encryption-key", "hist-back")


def test_backup_info_and_restore_info(servers: tuple[Api, Api]) -> None:
    sr, bao = servers
    bao.ok("POST", "transit/keys/info", {"exportable": True, "allow_plaintext_backup": True})
    backup = bao.backup("info")
    sr.ok("POST", "transit/restore/info", {"backup": backup})
    theirs = json.loads(base64.b64decode(backup))["policy"]["backup_info"]
    ours = sr.ok("GET", "transit/keys/info")
    assert ours["backup_info"] == theirs
    assert ours["restore_info"]["version"] == 1 and ours["restore_info"]["time"]
    again = json.loads(base64.b64decode(sr.backup("info")))["policy"]
    assert again["restore_info"]["version"] == 1 and again["backup_info"]["version"] == 1


def _answer(status: int, doc: Any) -> tuple[int, Any]:
    return status, (doc or {}).get("errors", doc)


def test_bad_inputs_get_openbao_statuses_and_words(servers: tuple[Api, Api]) -> None:
    sr, bao = servers
    for api in servers:
        api.ok("POST", "transit/keys/plain", {})
        api.ok("POST", "transit/keys/expo", {"exportable": True})
        api.ok("POST", "transit/keys/both", {"exportable": True,
                                             "allow_plaintext_backup": True})
    material, _ = new_key_material("aes256-gcm96")
    cases: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "transit/backup/plain", None),
        ("GET", "transit/backup/expo", None),
        ("GET", "transit/backup/none", None),
        ("POST", "transit/restore", {}),
        ("POST", "transit/restore", {"backup": "%%%"}),
        ("POST", "transit/restore", {"backup": "QUJD"}),
        ("POST", "transit/restore", {"backup": "e25vdCBqc29u"}),
        ("POST", "transit/restore", {"backup": ""}),
        ("POST", "transit/restore/a/b", {"backup": "e30="}),
        ("GET", "transit/export/encryption-key/plain", None),
        ("GET", "transit/export/foo-key/expo", None),
        ("GET", "transit/export/encryption-key/expo?format=xx", None),
        ("GET", "transit/export/encryption-key/none", None),
        ("GET", "transit/export/signing-key/expo", None),
        ("GET", "transit/export/public-key/expo", None),
        ("GET", "transit/export/encryption-key/expo/7", None),
        ("GET", "transit/export/encryption-key/expo/x", None),
        ("GET", "transit/export/encryption-key/expo/0", None),
        ("GET", "transit/export/encryption-key/expo/-1", None),
        ("GET", "transit/export/encryption-key/expo?format=der", None),
        ("GET", "transit/export/hmac-key/expo?format=pem", None),
        ("POST", "transit/keys/i1/import", {"ciphertext": "%%%"}),
        ("POST", "transit/keys/i1/import", {"ciphertext": base64.b64encode(b"x" * 100)
                                            .decode()}),
        ("POST", "transit/keys/i1/import", {"ciphertext": base64.b64encode(b"x" * 600)
                                            .decode()}),
        ("POST", "transit/keys/i1/import", {"ciphertext": "AAAA", "hash_function": "MD5"}),
        ("POST", "transit/keys/i1/import", {"ciphertext": "AAAA", "type": "des"}),
        ("POST", "transit/keys/i1/import", {"ciphertext": "AAAA",
                                            "convergent_encryption": True}),
        ("POST", "transit/keys/i1/import", {"ciphertext": "AAAA", "auto_rotate_period": "1h"}),
        ("POST", "transit/keys/i1/import", {"public_key": "x"}),
        ("POST", "transit/keys/i1/import", {}),
        ("POST", "transit/keys/i4/import", {"public_key": "nope", "type": "ed25519"}),
        ("POST", "transit/keys/none/import_version", {"ciphertext": "AAAA"}),
        ("POST", "transit/keys/expo/import_version", {"ciphertext": "AAAA"}),
    ]
    for method, path, body in cases:
        ours, theirs = _answer(*sr.call(method, path, body)), _answer(*bao.call(method, path,
                                                                                 body))
        assert ours == theirs, (method, path, body)
    # A write to the read-only wrapping_key: 405 on both (the text is the framework's).
    assert sr.call("POST", "transit/wrapping_key")[0] == bao.call("POST",
                                                                  "transit/wrapping_key")[0] == 405
    # An existing key, without force, with each server's own backup of it.
    for api in servers:
        status, doc = api.call("POST", "transit/restore", {"backup": api.backup("both")})
        assert (status, doc["errors"]) == (500, ['1 error occurred:\n\t* key "both" already '
                                                 'exists\n\n']), api.tag
    # Per-server material: each server's own wrapping key.
    for api in servers:
        wk = api.wrapping_key()
        raw = base64.b64decode(wrap_for_import(wk, material))
        tampered = bytearray(raw)
        tampered[-2] ^= 1
        checks = {
            wrap_for_import(wk, material[:16]):
                "error importing key: invalid key size 16 bytes for key type aes256-gcm96",
            wrap_for_import(wk, material, "SHA1"): "crypto/rsa: decryption error",
            base64.b64encode(bytes(tampered)).decode(): "kwp: unwrap failed integrity check",
            base64.b64encode(raw[:520]).decode(): "kwp: wrapped key size too small",
            wrap_for_import(wk, material, ephemeral=bytes(16)):
                "expected ephemeral AES key to be 256-bit",
        }
        for ct, text in checks.items():
            status, doc = api.call("POST", "transit/keys/i5/import", {"ciphertext": ct})
            assert (status, doc["errors"]) == (500, [f"1 error occurred:\n\t* {text}\n\n"]), (
                api.tag, text)
        status, doc = api.call("POST", "transit/keys/expo/import",
                               {"ciphertext": wrap_for_import(wk, material)})
        assert status == 500 and "the import path cannot be used with an existing key" in \
            doc["errors"][0], api.tag


def test_wrapping_key_is_rsa_4096_and_stable(servers: tuple[Api, Api],
                                             tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    sr, bao = servers
    for api in servers:
        pem = api.wrapping_key()
        key = serialization.load_pem_public_key(pem.encode())
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 4096
        assert pem.startswith("-----BEGIN PUBLIC KEY-----\n") and pem.endswith("-----\n")
        assert all(api.wrapping_key() == pem for _ in range(4))  # every worker, same key


@pytest.mark.parametrize("key_type", ALL_TYPES)
def test_codec_rewrites_openbao_documents_byte_for_byte(servers: tuple[Api, Api],
                                                        key_type: str) -> None:
    """policy_json (sym's keysutil codec) reads OpenBao's stored JSON and writes it back
    unchanged: every field, Go's encodings (base64 []byte, RFC 3339 nanosecond times,
    big.Int numbers, *rsa.PrivateKey's N/E/D/Primes/Precomputed, map keys as strings)."""
    from strongroom.engines.transit import policy_json

    _, bao = servers
    name = f"codec-{key_type}"
    _bao_key_with_history(bao, name, key_type)
    bao.ok("POST", f"transit/keys/{name}/rotate")
    if key_type != "hmac":
        bao.ok("POST", f"transit/keys/{name}/config", {"min_decryption_version": 2})
    raw = base64.b64decode(bao.backup(name))
    doc = json.loads(raw)
    # Python's json writes Go's compact form back exactly: the reference bytes.
    assert json.dumps(doc, separators=(",", ":")).encode() + b"\n" == raw
    original = json.dumps(doc["policy"], separators=(",", ":")).encode()
    assert policy_json.dumps(policy_json.loads(original)) == original
