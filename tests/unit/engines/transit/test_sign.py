"""sign/ and verify/ (signatures): OpenBao's outputs, byte formats, options and errors.

Keys and signatures come from OpenBao 2.7 (transit_vectors): ed25519 signatures
must be byte-identical, OpenBao's ECDSA/RSA signatures must verify here, and ours
must verify with the public key OpenBao published, checked with ``cryptography``
directly (not with the code under test).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from transit_vectors import VECTORS, call, policy, public_pem, router, signatures

from strongroom.engines.transit import signing, signing_keys
from strongroom.engines.transit.policy import KeyEntry, Policy

MSG = VECTORS["input"]
KEYS = ["ved25519", "ved_derived", "vp256", "vp384", "vp521", "vrsa2048"]
_HASHES = {"sha1": hashes.SHA1, "sha2-224": hashes.SHA224, "sha2-256": hashes.SHA256,
           "sha2-384": hashes.SHA384, "sha2-512": hashes.SHA512, "sha3-224": hashes.SHA3_224,
           "sha3-256": hashes.SHA3_256, "sha3-384": hashes.SHA3_384,
           "sha3-512": hashes.SHA3_512}


@pytest.fixture(scope="module")
def r() -> Any:
    return router({name: policy(name) for name in VECTORS["keys"]})


def _cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [(name, s["request"], s["response"]) for name in KEYS for s in signatures(name)]


def _id(case: tuple[str, dict[str, Any], dict[str, Any]]) -> str:
    name, req, _ = case
    return name + ":" + ",".join(f"{k}={v}" for k, v in sorted(req.items()) if k != "input")


def _b64(text: str, jws: bool) -> bytes:
    if jws:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return base64.b64decode(text)


def independent_verify(name: str, req: dict[str, Any], signature: str,
                       public_key: str | None = None) -> None:
    """Check ``signature`` with OpenBao's published public key and cryptography alone."""
    version = int(signature.split(":")[1][1:])
    jws = req.get("marshaling_algorithm") == "jws"
    raw = _b64(signature.split(":", 2)[2], jws)
    message = base64.b64decode(req["input"])
    alg = req.get("hash_algorithm", "sha2-256")
    if public_key is not None:  # derived ed25519: the key the response returned
        ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key)).verify(
            raw, message)
        return
    published = public_pem(name, version)
    if not published.startswith("-----"):
        ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(published)).verify(
            raw, message)
        return
    key = serialization.load_pem_public_key(published.encode())
    if isinstance(key, ec.EllipticCurvePublicKey):
        if jws:
            half = len(raw) // 2
            raw = utils.encode_dss_signature(int.from_bytes(raw[:half], "big"),
                                             int.from_bytes(raw[half:], "big"))
        if req.get("prehashed"):
            # A digest of any size: ECDSA keeps its leftmost curve-size bits (Go and
            # OpenSSL alike), so the message goes in whole.
            key.verify(raw, message, ec.ECDSA(utils.Prehashed(_Sized(len(message)))))
            return
        key.verify(raw, message, ec.ECDSA(_HASHES[alg]()))
        return
    assert isinstance(key, rsa.RSAPublicKey)
    if alg == "none":
        key.verify(raw, message, padding.PKCS1v15(), utils.NoDigestInfo())
        return
    algo = _HASHES[alg]()
    data = message if req.get("prehashed") else hashlib.new(
        signing.HASHLIB_NAMES[alg], message).digest()
    if req.get("signature_algorithm") == "pkcs1v15":
        key.verify(raw, data, padding.PKCS1v15(), utils.Prehashed(algo))
        return
    salt = {"hash": padding.PSS.DIGEST_LENGTH, "-1": padding.PSS.DIGEST_LENGTH}.get(
        req.get("salt_length", "auto"), padding.PSS.AUTO)
    key.verify(raw, data, padding.PSS(padding.MGF1(algo), salt), utils.Prehashed(algo))


class _Sized(hashes.HashAlgorithm):
    name = "sha256"
    block_size = None

    def __init__(self, size: int) -> None:
        self._size = size

    @property
    def digest_size(self) -> int:
        return self._size


@pytest.mark.parametrize("case", _cases(), ids=_id)
def test_openbao_signature_verifies_here(r: Any, case: tuple[str, dict[str, Any], Any]) -> None:
    name, req, resp = case
    body = {k: v for k, v in req.items() if k != "key_version"}
    assert call(r, f"verify/{name}", {**body, "signature": resp["signature"]}) == (
        200, {"valid": True})
    # One flipped bit in the message: invalid.
    tampered = base64.b64encode(bytes([base64.b64decode(req["input"])[0] ^ 1])
                                + base64.b64decode(req["input"])[1:]).decode()
    assert call(r, f"verify/{name}", {**body, "input": tampered,
                                      "signature": resp["signature"]}) == (200, {"valid": False})


@pytest.mark.parametrize("case", _cases(), ids=_id)
def test_signature_made_here_matches_openbao(r: Any, case: tuple[str, dict[str, Any], Any]
                                             ) -> None:
    name, req, resp = case
    status, data = call(r, f"sign/{name}", req)
    assert status == 200, data
    assert data["key_version"] == resp["key_version"]
    assert sorted(data) == sorted(resp)
    assert data["signature"].startswith(f"vault:v{resp['key_version']}:")
    if name.startswith("ved"):
        assert data == resp  # deterministic: byte-identical, derived public key too
    independent_verify(name, req, data["signature"], data.get("public_key"))


def test_independent_check_rejects_a_forgery() -> None:
    """The helper above really verifies: another key's signature fails it."""
    req = {"input": MSG}
    other = ed25519.Ed25519PrivateKey.generate().sign(base64.b64decode(MSG))
    with pytest.raises(InvalidSignature):
        independent_verify("ved25519", req, "vault:v2:" + base64.b64encode(other).decode())


def test_jws_is_fixed_size_base64url_and_asn1_is_der(r: Any) -> None:
    for name, size in (("vp256", 64), ("vp384", 96), ("vp521", 132)):
        _, data = call(r, f"sign/{name}", {"input": MSG, "marshaling_algorithm": "jws"})
        text = data["signature"].split(":", 2)[2]
        assert "=" not in text and "+" not in text and "/" not in text
        assert len(_b64(text, True)) == size
        _, data = call(r, f"sign/{name}", {"input": MSG})
        utils.decode_dss_signature(base64.b64decode(data["signature"].split(":", 2)[2]))


def test_ed25519_ignores_hash_algorithm_and_prehashed(r: Any) -> None:
    base = call(r, "sign/ved25519", {"input": MSG})
    assert call(r, "sign/ved25519/sha2-512", {"input": MSG, "prehashed": True}) == base
    assert call(r, "sign/ved25519", {"input": MSG, "hash_algorithm": "sha3-256"}) == base


def test_derived_key_depends_on_context(r: Any) -> None:
    one = call(r, "sign/ved_derived", {"input": MSG, "context": "YQ=="})[1]
    two = call(r, "sign/ved_derived", {"input": MSG, "context": "Yg=="})[1]
    assert one["public_key"] != two["public_key"]
    assert call(r, "verify/ved_derived", {"input": MSG, "context": "Yg==",
                                          "signature": one["signature"]}) == (
        200, {"valid": False})
    assert call(r, "verify/ved_derived", {"input": MSG, "context": "YQ==",
                                          "signature": one["signature"]}) == (
        200, {"valid": True})


def test_algorithm_precedence(r: Any) -> None:
    """URL, then hash_algorithm, then the deprecated algorithm (OpenBao 2.7)."""
    sig = call(r, "sign/vrsa2048", {"input": MSG, "algorithm": "sha2-512",
                                    "signature_algorithm": "pkcs1v15"})[1]["signature"]
    ok = {"input": MSG, "signature": sig, "signature_algorithm": "pkcs1v15"}
    assert call(r, "verify/vrsa2048/sha2-512", ok)[1] == {"valid": True}
    assert call(r, "verify/vrsa2048", {**ok, "hash_algorithm": "sha2-512",
                                       "algorithm": "sha2-256"})[1] == {"valid": True}
    assert call(r, "verify/vrsa2048", {**ok, "hash_algorithm": "sha2-256",
                                       "algorithm": "sha2-512"})[1] == {"valid": False}
    assert call(r, "verify/vrsa2048", {**ok, "hash_algorithm": "",
                                       "algorithm": "sha2-512"})[1] == {"valid": True}
    assert call(r, "verify/vrsa2048", ok)[1] == {"valid": False}


def test_salt_lengths(r: Any) -> None:
    def sig(salt: str) -> str:
        return str(call(r, "sign/vrsa2048", {"input": MSG, "salt_length": salt})[1]["signature"])

    auto, by_hash, ten = sig("auto"), sig("hash"), sig("10")
    check = {"input": MSG}
    assert call(r, "verify/vrsa2048", {**check, "signature": ten})[1] == {"valid": True}
    assert call(r, "verify/vrsa2048", {**check, "signature": ten, "salt_length": "10"}
                )[1] == {"valid": True}
    assert call(r, "verify/vrsa2048", {**check, "signature": ten, "salt_length": "11"}
                )[1] == {"valid": False}
    assert call(r, "verify/vrsa2048", {**check, "signature": by_hash, "salt_length": "HASH"}
                )[1] == {"valid": True}
    assert call(r, "verify/vrsa2048", {**check, "signature": auto, "salt_length": "222"}
                )[1] == {"valid": True}  # auto signs with the largest salt
    assert call(r, "sign/vrsa2048", {"input": MSG, "salt_length": "223"}) == (
        400, "requested salt length 223 is invalid")
    assert signing.parse_salt_length("+5") == 5
    assert signing.parse_salt_length("0") == signing.SALT_AUTO


def test_prehashed_rsa_and_raw_pkcs1(r: Any) -> None:
    digest = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    s = call(r, "sign/vrsa2048", {"input": digest, "prehashed": True})[1]["signature"]
    assert call(r, "verify/vrsa2048", {"input": base64.b64encode(b"x").decode(),
                                       "signature": s})[1] == {"valid": True}
    # The wrong size of digest: OpenBao answers 500 with Go's text; here 400, same words.
    assert call(r, "sign/vrsa2048", {"input": MSG, "prehashed": True}) == (
        400, "crypto/rsa: input must be hashed with given hash")
    assert call(r, "sign/vrsa2048", {"input": MSG, "prehashed": True,
                                     "signature_algorithm": "pkcs1v15"}) == (
        400, "crypto/rsa: input must be hashed message")
    assert call(r, "verify/vrsa2048", {"input": MSG, "prehashed": True, "signature": s}
                ) == (200, {"valid": False})
    too_long = base64.b64encode(b"x" * 246).decode()
    assert call(r, "sign/vrsa2048", {"input": too_long, "prehashed": True,
                                     "hash_algorithm": "none",
                                     "signature_algorithm": "pkcs1v15"}) == (
        400, "crypto/rsa: message too long for RSA key size")


BAD_REQUESTS = [
    # (path, body, OpenBao's status, error text); Strongroom answers 400 to all.
    ("sign/nokey", {"input": MSG}, 400, "signing key not found"),
    ("verify/nokey", {"input": MSG, "signature": "vault:v1:AAAA"}, 400,
     "signature verification key not found"),
    ("sign/vhmac", {"input": MSG}, 400, "key type hmac does not support signing"),
    ("verify/vhmac", {"input": MSG, "signature": "x"}, 400,
     "key type hmac does not support verification"),
    ("sign/ved25519/md5", {"input": MSG}, 400, 'invalid hash algorithm "md5"'),
    ("sign/ved25519", {"input": MSG, "algorithm": "md5"}, 400, 'invalid hash algorithm "md5"'),
    ("sign/nokey", {"input": MSG, "hash_algorithm": "md5"}, 400, "signing key not found"),
    ("sign/nokey", {"input": MSG, "marshaling_algorithm": "md5"}, 400,
     'invalid marshaling type "md5"'),
    ("sign/nokey", {"input": MSG, "salt_length": "md5"}, 400,
     "salt length neither 'auto', 'hash', nor an int: md5"),
    ("sign/vrsa2048", {"input": MSG, "salt_length": " 5"}, 400,
     "salt length neither 'auto', 'hash', nor an int:  5"),
    ("sign/vrsa2048", {"input": MSG, "salt_length": "-2"}, 400, "salt length is invalid: -2"),
    ("sign/vrsa2048", {"input": MSG, "salt_length": "300"}, 500,
     "requested salt length 300 is invalid"),
    ("verify/vrsa2048", {"input": MSG, "signature": "vault:v1:AAAA", "salt_length": "300"},
     400, "requested salt length 300 is invalid"),
    ("sign/vrsa2048", {"input": MSG, "hash_algorithm": "none"}, 400,
     "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15"),
    ("sign/vrsa2048", {"input": MSG, "signature_algorithm": "PSS"}, 500,
     "unsupported rsa signature algorithm PSS"),
    ("sign/vrsa2048", {"input": MSG, "key_version": 3}, 500,
     "requested version for signing is higher than the latest key version"),
    ("sign/vrsa2048", {"input": MSG, "key_version": -1}, 500,
     "requested version for signing is negative"),
    ("sign/vrsa2048", {"input": "!!"}, 400,
     "unable to decode input as base64: illegal base64 data at input byte 0"),
    ("sign/vrsa2048", {"input": "aGVsbG8"}, 400,
     "unable to decode input as base64: illegal base64 data at input byte 4"),
    ("sign/ved_derived", {"input": MSG}, 500,
     "error deriving key: missing 'context' for key derivation; the key was created using a "
     "derived key, which means additional, per-request information must be included in "
     "order to perform operations with the key"),
    ("sign/ved_derived", {"input": MSG, "context": "!!"}, 400,
     "failed to base64-decode context"),
    ("sign/vp256", {"input": "", "prehashed": True}, 500, "ecdsa: hash cannot be empty"),
    ("sign/vrsa2048", {"batch_input": []}, 400, "missing batch input to process"),
    ("sign/vrsa2048", {"batch_input": "x"}, 500,
     "failed to parse batch input: '' source data must be an array or slice, got string"),
    ("sign/vrsa2048", {"batch_input": [{"input": True}]}, 500,
     "failed to parse batch input: decoding failed due to the following error(s):\n\n"
     "'[0][input]' expected type 'string', got unconvertible type 'bool'"),
    ("verify/ved25519", {"input": MSG}, 400,
     "neither a 'signature' nor an 'hmac' were given to verify"),
    ("verify/ved25519", {"input": MSG, "signature": "x"}, 400, "invalid signature: no prefix"),
    ("verify/ved25519", {"input": MSG, "signature": "vault:v1"}, 400,
     "invalid signature: wrong number of fields"),
    ("verify/ved25519", {"input": MSG, "signature": "vault:vx:AAAA"}, 400,
     "invalid signature: version number could not be decoded"),
    ("verify/ved25519", {"input": MSG, "signature": "vault:v3:AAAA"}, 400,
     "invalid signature: version is too new"),
    ("verify/ved25519", {"input": MSG, "signature": "vault:v0:AAAA"}, 400,
     "ciphertext or signature version is disallowed by policy (too old)"),
    ("verify/ved25519", {"input": MSG, "signature": "vault:v-1:AAAA"}, 400,
     "ciphertext or signature version is disallowed by policy (too old)"),
    ("verify/ved25519", {"input": MSG, "signature": "vault:v1:!!"}, 400,
     "invalid base64 signature value"),
    ("verify/vp256", {"input": MSG, "signature": "vault:v1:AAAA"}, 400,
     "supplied signature is invalid"),
    ("verify/vp256", {"input": MSG, "signature": "vault:v1:MAYCAQECAQEA"}, 400,
     "supplied signature contains extra data"),
    ("verify/vrsa2048", {"input": MSG, "signature": "vault:v1:AAAA",
                         "signature_algorithm": "foo"}, 500,
     "unsupported rsa signature algorithm foo"),
    ("verify/ved_derived", {"input": MSG, "signature": "vault:v1:AAAA"}, 500,
     "error deriving key: missing 'context' for key derivation; the key was created using a "
     "derived key, which means additional, per-request information must be included in "
     "order to perform operations with the key"),
    ("verify/ved25519", {"batch_input": [{"input": MSG, "signature": "x"}, {"input": MSG}]},
     400, "some elements of batch_input are missing 'signature'"),
    ("verify/ved25519", {"batch_input": [{"input": MSG, "signature": "x"},
                                         {"input": MSG, "hmac": "x"}]}, 400,
     "elements of batch_input must all provide 'signature' or all provide 'hmac'"),
    ("verify/ved25519", {"batch_input": [{"input": MSG}]}, 400,
     "no batch_input elements have 'signature' or 'hmac'"),
    ("verify/ved25519", {"batch_input": [{"input": MSG, "hmac": "x"}, {"input": MSG}]}, 400,
     "some elements of batch_input are missing 'hmac'"),
]


@pytest.mark.parametrize(("path", "body", "bao_status", "text"), BAD_REQUESTS,
                         ids=[f"{p}:{t[:40]}" for p, _, _, t in BAD_REQUESTS])
def test_bad_requests(r: Any, path: str, body: dict[str, Any], bao_status: int,
                      text: str) -> None:
    # OpenBao answers some of these client mistakes with a 500 (go-multierror
    # wrapped): Strongroom answers 400 with the same words.
    assert call(r, path, body) == (400, text)


def test_verify_valid_false_cases(r: Any) -> None:
    s = call(r, "sign/ved25519", {"input": MSG})[1]["signature"]
    for body in ({"input": MSG, "signature": "vault:v1:AAAA"},
                 {"signature": s},  # missing input: the empty message
                 {"input": MSG, "signature": s[:-4] + "AAA="}):
        assert call(r, "verify/ved25519", body) == (200, {"valid": False})
    for sig in ("vault:v1:", "vault:v1:AAAA"):
        assert call(r, "verify/vp256", {"input": MSG, "signature": sig,
                                        "marshaling_algorithm": "jws"}) == (
            200, {"valid": False})
    # A signature of one version does not verify as another.
    s2 = call(r, "sign/vp256", {"input": MSG})[1]["signature"]
    assert call(r, "verify/vp256", {"input": MSG, "signature": s2.replace("v2:", "v1:")}
                ) == (200, {"valid": False})


def test_batches(r: Any) -> None:
    ctx = base64.b64encode(b"c").decode()
    status, data = call(r, "sign/ved_derived", {"batch_input": [
        {"input": MSG}, {"input": MSG, "context": ctx, "reference": "two"},
        {"input": "!!"}, {"context": ctx}, {"input": MSG, "context": "!!"}, None,
        {"input": 1234, "context": ctx}]})
    assert status == 200
    results = data["batch_results"]
    assert results[0] == {"key_version": 0, "reference": "",
                          "error": "error deriving key: missing 'context' for key derivation; "
                          "the key was created using a derived key, which means additional, "
                          "per-request information must be included in order to perform "
                          "operations with the key"}
    assert sorted(results[1]) == ["key_version", "publickey", "reference", "signature"]
    assert results[1]["reference"] == "two" and results[1]["key_version"] == 2
    assert results[2]["error"] == ("unable to decode input as base64: illegal base64 data "
                                   "at input byte 0")
    assert results[3]["error"] == results[5]["error"] == "missing input"
    assert results[4]["error"] == "failed to base64-decode context"
    assert "signature" in results[6]  # a JSON number is its text: "1234" is base64
    sigs = [results[1]["signature"], "vault:v1:AAAA", "bad"]
    status, data = call(r, "verify/ved_derived", {"batch_input": [
        {"input": MSG, "context": ctx, "signature": s, "reference": str(i)}
        for i, s in enumerate(sigs)]})
    assert data["batch_results"] == [
        {"valid": True, "reference": "0"}, {"valid": False, "reference": "1"},
        {"valid": False, "error": "invalid signature: no prefix", "reference": "2"}]
    status, data = call(r, "sign/vrsa2048", {"batch_input": [{"input": MSG}],
                                             "key_version": 5})
    assert data["batch_results"] == [{"key_version": 0, "reference": "", "error":
                                      "requested version for signing is higher than the "
                                      "latest key version"}]


def _versioned(min_enc: int = 0, min_dec: int = 1) -> Policy:
    pol = policy("vp256")
    pol.min_encryption_version, pol.min_decryption_version = min_enc, min_dec
    return pol


def test_min_versions() -> None:
    r = router({"k": _versioned(min_enc=2, min_dec=2)})
    assert call(r, "sign/k", {"input": MSG, "key_version": 1}) == (
        400, "requested version for signing is less than the minimum encryption key version")
    s = call(r, "sign/k", {"input": MSG})[1]["signature"]
    assert s.startswith("vault:v2:")
    assert call(r, "verify/k", {"input": MSG, "signature": s.replace("v2:", "v1:")}) == (
        400, "ciphertext or signature version is disallowed by policy (too old)")


def test_trimmed_version_and_public_only_keys() -> None:
    pol = policy("vp256")
    del pol.keys[1]
    public_only = policy("vrsa2048")
    entry = public_only.keys[2]
    assert entry.rsa_key is not None
    public_only.keys[2] = KeyEntry(rsa_public_key=entry.rsa_key.public_key(),
                                   hmac_key=entry.hmac_key)
    signed = call(router({"k": policy("vrsa2048")}), "sign/k", {"input": MSG})[1]["signature"]
    r = router({"t": pol, "pub": public_only}, stored=False)
    assert call(r, "sign/t", {"input": MSG, "key_version": 1}) == (400, "no such key version")
    assert call(r, "sign/pub", {"input": MSG}) == (
        400, "requested version for signing does not contain a private part")
    assert call(r, "verify/pub", {"input": MSG, "signature": signed}) == (200, {"valid": True})


@pytest.mark.parametrize(("der", "why"), [
    ("3006020101020101", None),
    ("300702010102010100", "extra data inside the SEQUENCE is allowed"),
    ("3006020101020101ff", "extra data"),
    ("30060201010201", "truncated"),
    ("3007020200010201 01", "non-minimal integer"),
    ("308106020101020101", "non-minimal length"),
    ("3080020101020101 0000", "indefinite length"),
    ("3106020101020101", "not a SEQUENCE"),
    ("3006020001020101", "empty integer: the first is 0 bytes"),
])
def test_der_signature_parsing(der: str, why: str | None) -> None:
    raw = bytes.fromhex(der.replace(" ", ""))
    if why is None or why.startswith("extra data inside"):
        assert signing.parse_der_signature(raw) == (1, 1)
    elif why == "extra data":
        with pytest.raises(signing.SignError, match="contains extra data"):
            signing.parse_der_signature(raw)
    else:
        with pytest.raises(signing.SignError, match="supplied signature is invalid"):
            signing.parse_der_signature(raw)


def test_key_objects_are_cached_per_entry() -> None:
    r = router({"k": policy("vp384")})
    call(r, "sign/k", {"input": MSG})
    before = dict(signing_keys._objects)
    for _ in range(3):
        call(r, "sign/k", {"input": MSG})
    assert signing_keys._objects == before
    cached = r.keys.get("k")
    assert cached is not None
    slot = (id(cached.keys[2]), "ec-private")
    assert slot in signing_keys._objects
    del cached
    r.keys.clear()  # the ring leaves the cache (invalidate): its key objects go too
    import gc

    gc.collect()
    assert slot not in signing_keys._objects


def test_derived_key_errors_in_keysutils_order() -> None:
    pol = policy("ved_derived")
    signed = call(router({"k": policy("ved_derived")}), "sign/k",
                  {"input": MSG, "context": "YQ==", "key_version": 1})[1]["signature"]
    del pol.keys[1]
    pol.min_decryption_version = 0
    r = router({"k": pol}, stored=False)
    # The missing context is reported before the missing version, both "deriving".
    assert call(r, "verify/k", {"input": MSG, "signature": signed})[1].startswith(
        "error deriving key: missing 'context'")
    assert call(r, "verify/k", {"input": MSG, "signature": signed, "context": "YQ=="}) == (
        400, "error deriving key: no such key version")
    # An imported derived key has the legacy KDF: OpenBao cannot sign with it (a 500).
    pol.kdf = 0
    assert call(r, "sign/k", {"input": MSG, "context": "YQ==", "key_version": 2}) == (
        500, "1 error occurred:\n\t* ed25519: bad private key length: 32\n\n")


def test_hot_paths_read_no_storage_once_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    """sign/, verify/ and hmac/ with a cached key: no storage read per request."""
    from strongroom.physical.inmem import InmemBackend

    storage = InmemBackend()
    r = router({name: policy(name) for name in ("ved25519", "vp256", "vrsa2048", "vhmac")},
               storage=storage)
    requests = [("sign/ved25519", {"input": MSG}), ("sign/vp256", {"input": MSG}),
                ("sign/vrsa2048", {"input": MSG}), ("hmac/vhmac", {"input": MSG}),
                ("hmac/vp256", {"input": MSG}), ("hash", {"input": MSG}), ("random", {})]
    for path, body in requests:  # first use: each ring decoded from storage once
        assert call(r, path, body)[0] == 200
    reads: list[str] = []
    real_get = storage.get

    def counting(key: str) -> bytes | None:
        reads.append(key)
        return real_get(key)

    monkeypatch.setattr(storage, "get", counting)
    for path, body in requests:
        status, data = call(r, path, body)
        assert status == 200
        if path.startswith("sign/"):
            name = path.split("/")[1]
            assert call(r, f"verify/{name}", {"input": MSG, "signature": data["signature"]}
                        ) == (200, {"valid": True})
    assert reads == []
    r.invalidate("policy/vp256")  # another process changed it: read again, once
    call(r, "sign/vp256", {"input": MSG})
    call(r, "sign/vp256", {"input": MSG})
    assert [k for k in reads if k.endswith("policy/vp256")] == ["logical/t/policy/vp256"]


def test_soft_deleted_keys_refuse_every_use() -> None:
    pol = policy("ved25519")
    signed = call(router({"k": policy("ved25519")}), "sign/k", {"input": MSG})[1]
    pol.soft_deleted = True
    r = router({"k": pol})
    refused = "refusing to use soft-deleted key"
    assert call(r, "sign/k", {"input": MSG}) == (400, refused)  # OpenBao: a 500
    assert call(r, "sign/k", {"batch_input": [{"input": MSG}]})[1]["batch_results"] == [
        {"key_version": 0, "error": refused, "reference": ""}]
    assert call(r, "verify/k", {"input": MSG, "signature": signed["signature"]}) == (
        400, refused)
    assert call(r, "hmac/k", {"input": MSG}) == (400, refused)
    assert call(r, "verify/k", {"input": MSG, "hmac": "vault:v1:AAAA"}) == (400, refused)
    # verify/ with an hmac checks the version before the key, as OpenBao.
    assert call(r, "verify/k", {"input": MSG, "hmac": "vault:v9:AAAA"}) == (
        400, "invalid HMAC: version is too new")
