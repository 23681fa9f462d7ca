"""hmac/ and verify/ with ``hmac``: byte-identical to OpenBao with the same keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from transit_vectors import VECTORS, call, hmacs, policy, router

MSG = VECTORS["input"]


@pytest.fixture(scope="module")
def r() -> Any:
    return router({name: policy(name) for name in VECTORS["keys"]})


CASES = [(name, h) for name in VECTORS["keys"] for h in hmacs(name)]


@pytest.mark.parametrize(("name", "case"), CASES,
                         ids=[f"{n}:{h['algorithm']}:v{h['key_version']}" for n, h in CASES])
def test_same_hmac_as_openbao(r: Any, name: str, case: dict[str, Any]) -> None:
    alg, version = case["algorithm"], case["key_version"]
    assert call(r, f"hmac/{name}/{alg}", {"input": MSG, "key_version": version}) == (
        200, {"hmac": case["hmac"]})
    assert call(r, f"hmac/{name}", {"input": MSG, "key_version": version, "algorithm": alg}
                ) == (200, {"hmac": case["hmac"]})
    assert call(r, f"verify/{name}/{alg}", {"input": MSG, "hmac": case["hmac"]}) == (
        200, {"valid": True})
    # hash_algorithm and the deprecated algorithm both select it on verify/.
    assert call(r, f"verify/{name}", {"input": MSG, "hmac": case["hmac"],
                                      "algorithm": alg}) == (200, {"valid": True})
    wrong = "sha2-384" if alg != "sha2-384" else "sha2-512"
    assert call(r, f"verify/{name}", {"input": MSG, "hmac": case["hmac"],
                                      "hash_algorithm": wrong}) == (200, {"valid": False})


def test_key_choice_follows_vault() -> None:
    """An hmac key MACs with its own key; other types with the version's hmac_key."""
    hmac_type, ecdsa = policy("vhmac"), policy("vp256")
    r = router({"h": hmac_type, "e": ecdsa})
    msg = base64.b64decode(MSG)
    for name, key in (("h", hmac_type.keys[2].key), ("e", ecdsa.keys[2].hmac_key)):
        mac = hmac.new(key, msg, hashlib.sha256).digest()
        assert call(r, f"hmac/{name}", {"input": MSG})[1] == {
            "hmac": "vault:v2:" + base64.b64encode(mac).decode()}
    # Versions made before Vault had hmac/ have none; loading a ring gives its latest
    # version one (keysutil's Upgrade), older versions stay without.
    ecdsa.keys[1].hmac_key = ecdsa.keys[2].hmac_key = None
    upgraded = router({"e": ecdsa})
    assert call(upgraded, "hmac/e", {"input": MSG, "key_version": 1}) == (
        400, "no HMAC key exists for that key version")
    assert call(upgraded, "hmac/e", {"input": MSG})[0] == 200


BAD = [
    ("hmac/nokey", {"input": MSG}, "encryption key not found"),
    ("hmac/nokey", {"input": MSG, "algorithm": "md5"}, "encryption key not found"),
    ("hmac/vhmac", {"input": MSG, "algorithm": "md5"}, "unsupported algorithm '\\x00'"),
    ("hmac/vhmac/md5", {"input": MSG}, "unsupported algorithm '\\x00'"),
    ("hmac/vhmac", {"input": MSG, "algorithm": ""}, "unsupported algorithm '\\x00'"),
    ("hmac/vhmac", {"input": MSG, "algorithm": "none"}, "algorithm cannot be none"),
    ("hmac/vhmac", {"batch_input": "x", "algorithm": "none"}, "algorithm cannot be none"),
    ("hmac/vhmac", {"input": MSG, "algorithm": "none", "key_version": 5},
     "key version does not exist; latest key version is 2"),
    ("hmac/vhmac", {"input": MSG, "key_version": -1},
     "key version does not exist (cannot be negative)"),
    ("hmac/vhmac", {}, "missing input for HMAC"),
    ("hmac/vhmac", {"input": "!"},
     "unable to decode input as base64: illegal base64 data at input byte 0"),
    ("hmac/vhmac", {"batch_input": []}, "missing batch input to process"),
    ("hmac/vhmac", {"batch_input": {"input": MSG}},
     "failed to parse batch input: '' source data must be an array or slice, got map"),
    ("hmac/vhmac", {"batch_input": ["x"]},
     "failed to parse batch input: decoding failed due to the following error(s):\n\n'[0]' "
     "expected type 'transit.batchRequestHMACItem', got unconvertible type 'string'"),
    ("verify/nokey", {"input": MSG, "hmac": "x"}, "encryption key not found"),
    ("verify/nokey", {"input": MSG, "hmac": "x", "algorithm": "md5"},
     'invalid hash algorithm "md5"'),
    ("verify/nokey", {"input": MSG, "hmac": "x", "algorithm": "none"},
     "encryption key not found"),
    ("verify/vhmac", {"input": MSG, "hmac": "x", "algorithm": "none"},
     "algorithm cannot be none"),
    ("verify/vhmac", {"input": MSG, "hmac": "x"}, "invalid HMAC to verify: no prefix"),
    ("verify/vhmac", {"input": MSG, "hmac": "vault:v1"}, "invalid HMAC: wrong number of fields"),
    ("verify/vhmac", {"input": MSG, "hmac": "vault:vx:AA"},
     "invalid HMAC: version number could not be decoded"),
    ("verify/vhmac", {"input": MSG, "hmac": "vault:v1:!"},
     "unable to decode verification HMAC as base64: illegal base64 data at input byte 0"),
    ("verify/vhmac", {"input": MSG, "hmac": "vault:v3:AAAA"}, "invalid HMAC: version is too new"),
    ("verify/vhmac", {"input": MSG, "hmac": "vault:v0:AAAA"},
     "cannot verify HMAC: version is too old (disallowed by policy)"),
    ("verify/vhmac", {"input": "!", "hmac": "vault:v1:AAAA"},
     "unable to decode input as base64: illegal base64 data at input byte 0"),
    # A signature and an hmac: the signature is verified (hmac keys do not sign).
    ("verify/vhmac", {"input": MSG, "hmac": "x", "signature": "x"},
     "key type hmac does not support verification"),
]


@pytest.mark.parametrize(("path", "body", "text"), BAD, ids=[f"{p}:{t[:40]}" for p, _, t in BAD])
def test_bad_requests(r: Any, path: str, body: dict[str, Any], text: str) -> None:
    assert call(r, path, body) == (400, text)


def test_empty_and_missing_inputs(r: Any) -> None:
    empty = call(r, "hmac/vhmac", {"input": ""})
    assert empty[0] == 200
    assert call(r, "hmac/vhmac", {"input": None}) == empty
    assert call(r, "verify/vhmac", {"input": MSG, "hmac": None}) == (
        400, "invalid HMAC to verify: no prefix")
    # verify/ with no input checks the empty message, as OpenBao.
    assert call(r, "verify/vhmac", {"hmac": empty[1]["hmac"]}) == (200, {"valid": True})


def test_batches(r: Any) -> None:
    status, data = call(r, "hmac/vhmac", {"batch_input": [
        {"input": MSG, "reference": "a"}, {"input": "!"}, {}, None, {"input": None},
        {"input": MSG, "reference": 5}]})
    assert status == 200
    good = call(r, "hmac/vhmac", {"input": MSG})[1]["hmac"]
    empty = call(r, "hmac/vhmac", {"input": ""})[1]["hmac"]
    assert data["batch_results"] == [
        {"hmac": good, "reference": "a"},
        {"error": "unable to decode input as base64: illegal base64 data at input byte 0",
         "reference": ""},
        {"error": "missing input for HMAC", "reference": ""},
        {"error": "missing input for HMAC", "reference": ""},
        {"hmac": empty, "reference": ""},
        {"hmac": good, "reference": "5"}]
    status, data = call(r, "verify/vhmac", {"batch_input": [
        {"input": MSG, "hmac": good, "reference": "x"}, {"input": MSG, "hmac": "vault:v1:AAAA"},
        {"hmac": good}, {"input": MSG, "hmac": "x"}]})
    # OpenBao's item has valid,omitempty: a false "valid" is absent.
    assert data["batch_results"] == [
        {"valid": True, "reference": "x"}, {"reference": ""},
        {"error": "missing input", "reference": ""},
        {"error": "invalid HMAC to verify: no prefix", "reference": ""}]


def test_versions_and_min_versions() -> None:
    pol = policy("vhmac")
    pol.min_encryption_version, pol.min_decryption_version = 2, 2
    r = router({"k": pol})
    assert call(r, "hmac/k", {"input": MSG, "key_version": 1}) == (
        400, "cannot generate HMAC: version is too old (disallowed by policy)")
    v2 = call(r, "hmac/k", {"input": MSG, "key_version": 2})[1]["hmac"]
    assert v2 == call(r, "hmac/k", {"input": MSG})[1]["hmac"]
    old = router({"k": policy("vhmac")})
    v1 = call(old, "hmac/k", {"input": MSG, "key_version": 1})[1]["hmac"]
    assert call(r, "verify/k", {"input": MSG, "hmac": v1}) == (
        400, "cannot verify HMAC: version is too old (disallowed by policy)")
    trimmed = policy("vhmac")
    del trimmed.keys[1]
    trimmed.min_decryption_version = 0
    assert call(router({"k": trimmed}, stored=False), "verify/k",
                {"input": MSG, "hmac": v1}) == (400, "no such key version")


def test_verify_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch, r: Any) -> None:
    from strongroom.engines.transit import path_hmac

    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(path_hmac.hmac, "compare_digest", spy)
    good = call(r, "hmac/vhmac", {"input": MSG})[1]["hmac"]
    assert call(r, "verify/vhmac", {"input": MSG, "hmac": good}) == (200, {"valid": True})
    assert len(seen) == 1
