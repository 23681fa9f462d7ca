"""Key objects for signing, built from a KeyEntry's stored numbers and cached.

keysutil stores an ECDSA key as its numbers (``ec_d``, ``ec_x``, ``ec_y``) and an
ed25519 key as Go's 64-byte private key (seed || public). Building a ``cryptography``
key from them costs a scalar multiplication and a validation, more than the
signature itself, so the object is kept for as long as the entry lives: a ring in
the worker's keystore cache signs without rebuilding it, and a ring dropped from the
cache (invalidated, evicted) takes its key objects with it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.errors import BadRequestError

from .goencoding import Base64Error, b64decode
from .keytypes import EC_CURVES, KDF_HKDF_SHA256, KeyType, TransitInternalError
from .policy import KeyEntry, Policy

_DERIVE_MISSING_CONTEXT = (
    "missing 'context' for key derivation; the key was created using a derived key, "
    "which means additional, per-request information must be included in order to "
    "perform operations with the key")


class SignError(BadRequestError):
    """A sign/verify/HMAC failure OpenBao reports with these words (a 400 here)."""


def entry(policy: Policy, version: int) -> KeyEntry:
    """keysutil's ``safeGetKeyEntry``: no 0-means-latest."""
    found = policy.keys.get(version)
    if found is None:
        raise SignError("no such key version")
    return found


_T = TypeVar("_T")
_objects: dict[tuple[int, str], tuple[object, object]] = {}


def _cached(owner: KeyEntry, kind: str, source: object, build: Callable[[], _T]) -> _T:
    """A key object built from ``owner``, kept while the entry lives.

    ``source`` is the stored value the object came from: an entry changed in place
    (a new ``ec_d``) gets a fresh object instead of a stale one.
    """
    slot = (id(owner), kind)
    hit = _objects.get(slot)
    if hit is not None and hit[0] is source:
        return hit[1]  # type: ignore[return-value]
    obj = build()
    # Runs when the entry is collected, before its id can be reused by another one.
    weakref.finalize(owner, _objects.pop, slot, None)
    _objects[slot] = (source, obj)
    return obj


def ec_private(key_type: KeyType, owner: KeyEntry) -> ec.EllipticCurvePrivateKey:
    def build() -> ec.EllipticCurvePrivateKey:
        assert owner.ec_d is not None and owner.ec_x is not None and owner.ec_y is not None
        public = ec.EllipticCurvePublicNumbers(owner.ec_x, owner.ec_y, EC_CURVES[key_type]())
        return ec.EllipticCurvePrivateNumbers(owner.ec_d, public).private_key()

    return _cached(owner, "ec-private", owner.ec_d, build)


def ec_public(key_type: KeyType, owner: KeyEntry) -> ec.EllipticCurvePublicKey:
    def build() -> ec.EllipticCurvePublicKey:
        if owner.ec_x is None or owner.ec_y is None:
            raise TransitInternalError("no ECDSA public key found")
        return ec.EllipticCurvePublicNumbers(owner.ec_x, owner.ec_y,
                                             EC_CURVES[key_type]()).public_key()

    return _cached(owner, "ec-public", owner.ec_x, build)


def ed_private(owner: KeyEntry) -> ed25519.Ed25519PrivateKey:
    key = owner.key or b""
    return _cached(owner, "ed-private", owner.key,
                   lambda: ed25519.Ed25519PrivateKey.from_private_bytes(bytes(key[:32])))


def ed_public(owner: KeyEntry) -> ed25519.Ed25519PublicKey:
    """From the entry's base64 ``public_key``, as keysutil verifies (public-only too)."""
    def build() -> ed25519.Ed25519PublicKey:
        try:
            raw = b64decode(owner.public_key)
        except Base64Error as exc:
            raise TransitInternalError(str(exc)) from None
        if len(raw) != 32:
            raise TransitInternalError(f"ed25519: bad public key length: {len(raw)}")
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)

    return _cached(owner, "ed-public", owner.public_key, build)


def rsa_public(owner: KeyEntry) -> rsa.RSAPublicKey:
    public = owner.rsa_public()
    if public is None:
        raise TransitInternalError("no RSA public key found")
    return public


def derive_ed25519(policy: Policy, version: int, context: bytes) -> ed25519.Ed25519PrivateKey:
    """keysutil's ``GetKey(context, ver, 32)`` for a derived ed25519 key, its errors.

    The seed is the first 32 bytes of HKDF-SHA256(key, info=context), as Go's
    ``ed25519.GenerateKey`` reading the HKDF stream.
    """
    if not context:
        raise SignError("error deriving key: " + _DERIVE_MISSING_CONTEXT)
    found = policy.keys.get(version)
    if found is None:
        raise SignError("error deriving key: no such key version")
    if policy.kdf != KDF_HKDF_SHA256:
        # The legacy counter KDF (kdf 0: what an imported derived key gets) yields 32
        # bytes, which Go then uses as a 64-byte ed25519 private key: OpenBao fails.
        raise TransitInternalError("ed25519: bad private key length: 32")
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=context).derive(bytes(found.key or b""))
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed)
