"""Regenerate openbao_vectors.json from a running OpenBao dev server (not a test).

    bao server -dev -dev-root-token-id=root -dev-listen-address=127.0.0.1:18214 &
    curl -H 'X-Vault-Token: root' -d '{"type":"transit"}' \
        http://127.0.0.1:18214/v1/sys/mounts/transit
    python tests/unit/engines/transit/data/make_openbao_vectors.py http://127.0.0.1:18214

Exportable keys of each signing type with two versions, their exported private and
HMAC keys, and OpenBao's answers to sign/ and hmac/ requests made with them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import requests

HEADERS = {"X-Vault-Token": "root"}
MSG = base64.b64encode(b"The quick brown fox").decode()
ALL_HASHES = ["sha1", "sha2-224", "sha2-256", "sha2-384", "sha2-512", "sha3-224", "sha3-256",
              "sha3-384", "sha3-512"]
TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    "ved25519": ("ed25519", {}), "ved_derived": ("ed25519", {"derived": True}),
    "vp256": ("ecdsa-p256", {}), "vp384": ("ecdsa-p384", {}), "vp521": ("ecdsa-p521", {}),
    "vrsa2048": ("rsa-2048", {}), "vhmac": ("hmac", {"key_size": 32})}


def main(base: str) -> None:
    url = base.rstrip("/") + "/v1/transit/"

    def post(path: str, body: dict[str, Any]) -> Any:
        resp = requests.post(url + path, json=body, headers=HEADERS, timeout=30)
        resp.raise_for_status()
        return resp.json()["data"]

    def get(path: str) -> Any:
        resp = requests.get(url + path, headers=HEADERS, timeout=30)
        resp.raise_for_status()
        return resp.json()["data"]

    out: dict[str, Any] = {"input": MSG, "keys": {}}
    for name, (key_type, extra) in TYPES.items():
        post("keys/" + name, {"type": key_type, "exportable": True, **extra})
        post(f"keys/{name}/rotate", {})  # two versions: key_version matters
        spec: dict[str, Any] = {"type": key_type, "read": get("keys/" + name)}
        if key_type != "hmac":
            spec["signing_key"] = get(f"export/signing-key/{name}")["keys"]
        spec["hmac_key"] = get(f"export/hmac-key/{name}")["keys"]
        spec["hmacs"] = [
            {"algorithm": alg, "key_version": ver,
             "hmac": post(f"hmac/{name}/{alg}", {"input": MSG, "key_version": ver})["hmac"]}
            for alg in ALL_HASHES for ver in (1, 2)]
        spec["signatures"] = [{"request": body, "response": post(f"sign/{name}", body)}
                              for body in _sign_requests(key_type, extra)]
        out["keys"][name] = spec
    target = Path(__file__).parent / "openbao_vectors.json"
    target.write_text(json.dumps(out, indent=1, sort_keys=True))


def _sign_requests(key_type: str, extra: dict[str, Any]) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    if key_type == "ed25519":
        for ver in (1, 2):
            body: dict[str, Any] = {"input": MSG, "key_version": ver}
            if extra.get("derived"):
                body["context"] = base64.b64encode(b"tenant-1").decode()
            bodies += [{**body, "marshaling_algorithm": m} for m in ("asn1", "jws")]
    elif key_type.startswith("ecdsa"):
        bodies += [{"input": MSG, "hash_algorithm": alg, "marshaling_algorithm": m}
                   for alg in ("sha2-256", "sha2-512", "sha3-384", "sha1")
                   for m in ("asn1", "jws")]
        bodies += [{"input": base64.b64encode(bytes(range(n))).decode(), "prehashed": True}
                   for n in (20, 32, 100)]  # a prehashed input of any size
    elif key_type.startswith("rsa"):
        bodies += [{"input": MSG, "hash_algorithm": alg, "signature_algorithm": sa}
                   for alg in ALL_HASHES for sa in ("pss", "pkcs1v15")]
        bodies += [{"input": MSG, "salt_length": salt}
                   for salt in ("auto", "hash", "10", "0", "-1")]
        digest = base64.b64encode(hashlib.sha384(b"x").digest()).decode()
        bodies.append({"input": digest, "prehashed": True, "hash_algorithm": "sha2-384"})
        bodies.append({"input": base64.b64encode(b"raw bytes, no digest info").decode(),
                       "prehashed": True, "hash_algorithm": "none",
                       "signature_algorithm": "pkcs1v15"})
        bodies.append({"input": MSG, "marshaling_algorithm": "jws",
                       "signature_algorithm": "pkcs1v15"})
    return bodies


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:18214")
