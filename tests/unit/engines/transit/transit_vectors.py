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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from strongroom.barrier.view import StorageView
from strongroom.core.mounts import MountContext, MountEntry
from strongroom.core.request import Operation, Request
from strongroom.engines.transit import TransitBackend, transit_factory
from strongroom.engines.transit.policy import (
    KDF_HKDF_SHA256,
    KDF_HMAC_SHA256_COUNTER,
    KeyEntry,
    KeyType,
    Policy,
)
from strongroom.errors import StrongroomError
from strongroom.physical.inmem import InmemBackend

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "openbao_vectors.json").read_text())
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def entry_from_export(key_type: KeyType, signing_key: str | None, hmac_key: str,
                      public_key: str = "") -> KeyEntry:
    """A KeyEntry holding what OpenBao exported (and the public key it published)."""
    entry = KeyEntry(hmac_key=base64.b64decode(hmac_key), time=CREATED,
                     creation_time=int(CREATED.timestamp()))
    if key_type is KeyType.HMAC:
        entry.key = entry.hmac_key  # Vault: an hmac key's HMACKey is its key
    elif key_type is KeyType.ED25519:
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
            entry.public_key = public_key
        else:
            assert isinstance(private, rsa.RSAPrivateKey)
            entry.rsa_key = private
    return entry


def policy(name: str) -> Policy:
    """The OpenBao key ``name`` of the vectors, rebuilt with every version."""
    spec = VECTORS["keys"][name]
    key_type = KeyType.from_name(spec["type"])
    assert key_type is not None
    read = spec["read"]
    pol = Policy(name=name, type=key_type, derived=read["derived"],
                 kdf=KDF_HKDF_SHA256 if read["derived"] else KDF_HMAC_SHA256_COUNTER,
                 latest_version=read["latest_version"], archive_version=read["latest_version"],
                 min_decryption_version=1, key_size=read.get("key_size", 0))
    for version, hmac_key in spec["hmac_key"].items():
        signing_key = spec.get("signing_key", {}).get(version)
        published = read.get("keys", {}).get(version, {})
        public = published.get("public_key", "") if isinstance(published, dict) else ""
        pol.keys[int(version)] = entry_from_export(key_type, signing_key, hmac_key, public)
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


def router(policies: dict[str, Policy], stored: bool = True,
           storage: InmemBackend | None = None) -> TransitBackend:
    """A real TransitBackend (in-memory storage) holding ``policies``.

    ``stored``: written through the keystore and codec, then the cache dropped, so the
    first request decodes them from storage as a worker would. Otherwise they are
    served as given (states the keystore refuses to persist: a legacy KDF, an entry
    without its private part, a version gone without Vault's archive bookkeeping).
    """
    view = StorageView(storage or InmemBackend(), "logical/t/")
    b = transit_factory(MountContext(view, MountEntry(path="transit/", type="transit"),
                                     lambda: CREATED))
    if stored:
        for name, pol in policies.items():
            pol.name = name
            with b.keys.locked(name):
                b.keys.save(pol)
        b.keys.clear()
    else:
        b.keys = _Store(policies)  # type: ignore[assignment]
    return b


def call(backend: TransitBackend, path: str, body: dict[str, Any] | None = None
         ) -> tuple[int, Any]:
    """(status, data) of a write, or (status, error text) as the HTTP layer maps it."""
    req = Request(Operation.UPDATE, path, data=dict(body or {}))
    try:
        resp = backend.handle(req, path)
    except StrongroomError as exc:
        return exc.status, exc.message
    assert resp is not None
    return 200, resp.data


def warnings(backend: TransitBackend, path: str, body: dict[str, Any]) -> list[str]:
    resp = backend.handle(Request(Operation.UPDATE, path, data=dict(body)), path)
    assert resp is not None
    return list(resp.warnings)
