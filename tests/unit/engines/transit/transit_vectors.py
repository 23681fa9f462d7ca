"""Keys and outputs exported from OpenBao 2.7 (data/openbao_vectors.json), as policies.

``data/make_openbao_vectors.py`` made the file against a running ``bao server -dev``:
exportable keys of each signing type (two versions each), their exported private
and HMAC keys, and what OpenBao answered to sign/ and hmac/ requests with them.
Tests rebuild the same keys here and check Strongroom's crypto answers alike
(ed25519 and HMAC are deterministic: byte-identical; ECDSA and PSS are randomized:
OpenBao's signatures must verify here and ours with the exported public key).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from strongroom.core.request import Operation, Request
from strongroom.engines.transit import signing
from strongroom.errors import StrongroomError
from strongroom.framework import PathBackend

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "openbao_vectors.json").read_text())
TYPES = {name: num for num, name in signing.TYPE_NAMES.items()}


@dataclass
class Entry:
    """The KeyEntry fields signing.py reads (Vault's names)."""

    key: bytes = b""
    hmac_key: bytes = b""
    ec_x: int | None = None
    ec_y: int | None = None
    ec_d: int | None = None
    rsa_key: rsa.RSAPrivateKey | None = None
    rsa_public_key: rsa.RSAPublicKey | None = None
    public_key: str = ""


@dataclass
class Pol:
    name: str
    type: int
    keys: dict[int, Entry] = field(default_factory=dict)
    derived: bool = False
    kdf: int = 1
    latest_version: int = 0
    min_encryption_version: int = 0
    min_decryption_version: int = 1


def entry_from_export(key_type: int, signing_key: str | None, hmac_key: str) -> Entry:
    entry = Entry(hmac_key=base64.b64decode(hmac_key))
    if key_type == signing.HMAC:
        entry.key, entry.hmac_key = entry.hmac_key, b""
    elif key_type == signing.ED25519:
        assert signing_key is not None
        entry.key = base64.b64decode(signing_key)
        entry.public_key = base64.b64encode(entry.key[32:]).decode()
    else:
        assert signing_key is not None
        private = serialization.load_pem_private_key(signing_key.encode(), None)
        if isinstance(private, ec.EllipticCurvePrivateKey):
            numbers = private.private_numbers()
            entry.ec_d = numbers.private_value
            entry.ec_x, entry.ec_y = numbers.public_numbers.x, numbers.public_numbers.y
        else:
            assert isinstance(private, rsa.RSAPrivateKey)
            entry.rsa_key = private
    return entry


def policy(name: str) -> Pol:
    """The OpenBao key ``name`` of the vectors, rebuilt with every version."""
    spec = VECTORS["keys"][name]
    key_type = TYPES[spec["type"]]
    read = spec["read"]
    pol = Pol(name=name, type=key_type, derived=read["derived"],
              latest_version=read["latest_version"])
    for version, hmac_key in spec["hmac_key"].items():
        signing_key = spec.get("signing_key", {}).get(version)
        pol.keys[int(version)] = entry_from_export(key_type, signing_key, hmac_key)
    return pol


def public_pem(name: str, version: int) -> str:
    """The public key OpenBao's keys/<name> read shows for ``version``."""
    return str(VECTORS["keys"][name]["read"]["keys"][str(version)]["public_key"])


def signatures(name: str) -> list[dict[str, Any]]:
    return list(VECTORS["keys"][name]["signatures"])


def hmacs(name: str) -> list[dict[str, Any]]:
    return list(VECTORS["keys"][name]["hmacs"])


class _Store:
    def __init__(self, policies: dict[str, Any]) -> None:
        self.policies = policies

    def get(self, name: str) -> Any:
        return self.policies.get(name)


class _Backend:
    """What the path modules use of TransitBackend: the per-process key store."""

    def __init__(self, policies: dict[str, Any]) -> None:
        self.keys = _Store(policies)


def router(policies: dict[str, Any]) -> PathBackend:
    """asym's path modules routed as TransitBackend routes them."""
    from strongroom.engines.transit import path_hash, path_hmac, path_random, path_sign_verify

    b: Any = _Backend(policies)
    return PathBackend([*path_sign_verify.paths(b), *path_hmac.paths(b), *path_hash.paths(b),
                        *path_random.paths(b)])


def call(backend: PathBackend, path: str, body: dict[str, Any] | None = None
         ) -> tuple[int, Any]:
    """(status, data) of a write, or (status, error text) as the HTTP layer maps it."""
    req = Request(Operation.UPDATE, path, data=dict(body or {}))
    try:
        resp = backend.handle(req, path)
    except StrongroomError as exc:
        return exc.status, exc.message
    assert resp is not None
    return 200, resp.data


def warnings(backend: PathBackend, path: str, body: dict[str, Any]) -> list[str]:
    resp = backend.handle(Request(Operation.UPDATE, path, data=dict(body)), path)
    assert resp is not None
    return list(resp.warnings)
