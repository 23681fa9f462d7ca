"""Encryption and decryption for a transit Policy, in Vault's byte layout.

Symmetric: ``<prefix>`` + base64(nonce(12) || ciphertext || tag(16)) for AES-GCM and
ChaCha20-Poly1305; convergent encryption (version 3) takes the nonce from
HMAC-SHA256(derived HMAC key, plaintext)[:12], the HMAC key being the 32 bytes HKDF
yields after the encryption key. RSA: RSA-OAEP with SHA-256 (MGF1 SHA-256, no label).

The hot path (a non-derived AES key encrypting a small value) reuses one AEAD object
per key version, cached on the Policy.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from strongroom.errors import BadRequestError

from .goencoding import Base64Error, atoi, b64decode
from .keytypes import (
    CURRENT_CONVERGENT_VERSION,
    DEFAULT_VERSION_TEMPLATE,
    ERR_SOFT_DELETED,
    ERR_TOO_OLD,
    KeyType,
    TransitInternalError,
)
from .xchacha import NONCE_SIZE as XNONCE_SIZE
from .xchacha import XChaCha20Poly1305

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

    from .policy import Policy


NONCE_SIZE = 12
AEAD = AESGCM | ChaCha20Poly1305 | XChaCha20Poly1305
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def public_pem(public_key: PublicKeyTypes) -> str:
    """Go's ``pem.EncodeToMemory`` of ``x509.MarshalPKIXPublicKey``."""
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def ed25519_public(seed: bytes) -> bytes:
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _new_aead(policy: Policy, key: bytes) -> AEAD:

    if policy.type is KeyType.CHACHA20_POLY1305:
        return ChaCha20Poly1305(key)
    if policy.type is KeyType.XCHACHA20_POLY1305:
        return XChaCha20Poly1305(key)
    return AESGCM(key)


def nonce_size(policy: Policy) -> int:
    return XNONCE_SIZE if policy.type is KeyType.XCHACHA20_POLY1305 else NONCE_SIZE


def _auth_failed(policy: Policy) -> BadRequestError:

    if policy.type in (KeyType.CHACHA20_POLY1305, KeyType.XCHACHA20_POLY1305):
        return BadRequestError("chacha20poly1305: message authentication failed")
    return BadRequestError("cipher: message authentication failed")


def _aead(policy: Policy, version: int, context: bytes | None, num_bytes: int,
          for_encrypt: bool = False) -> AEAD:
    """The AEAD for ``version``: cached for a non-derived key, else built per call."""
    if not policy.derived:
        entry = policy.key_entry_exact(version)
        cached = policy._aeads.get(version)
        if cached is not None and cached[0] is entry.key:
            return cached[1]
        key = entry.key or b""
        if len(key) != num_bytes:
            raise TransitInternalError("could not derive enc key, length not correct")
        aead = _new_aead(policy, key)
        policy._aeads[version] = (entry.key, aead)
        return aead
    key = policy.get_key(context, version, num_bytes)
    if for_encrypt:
        key = key[:num_bytes]  # Vault encrypts with a prefix of the legacy KDF's 32 B
    if len(key) != num_bytes:
        raise TransitInternalError("could not derive enc key, length not correct")
    return _new_aead(policy, key)


def latest_encryptor(policy: Policy) -> Callable[[bytes, bytes], str] | None:
    """For a plain (non-derived, non-convergent) symmetric key: a function encrypting
    with the latest version, no associated data, given fresh random bytes for the nonce,
    exactly as ``encrypt(version=0)`` would; None for any other key. Batches use it to
    do the per-key work (checks, cipher lookup, prefix) once instead of per item."""
    if (policy.derived or policy.convergent_encryption or policy.soft_deleted
            or not policy.type.symmetric or policy.latest_version < 1):
        return None
    version = policy.latest_version
    size = nonce_size(policy)
    aead = _aead(policy, version, None, 16 if policy.type is KeyType.AES128_GCM96 else 32,
                 for_encrypt=True)
    prefix = policy.version_prefix(version)
    b64 = binascii.b2a_base64

    def encrypt_latest(plaintext: bytes, random: bytes) -> str:
        nonce = random[:size]
        return prefix + b64(nonce + aead.encrypt(nonce, plaintext, None), newline=False
                            ).decode()
    return encrypt_latest


def encrypt(policy: Policy, plaintext: bytes, *, context: bytes | None, nonce: bytes | None,
            version: int, associated_data: bytes | None, random: bytes | None = None) -> str:

    if policy.soft_deleted:
        raise BadRequestError(ERR_SOFT_DELETED)
    kt = policy.type
    if not kt.encryption_supported:
        raise BadRequestError(f"message encryption not supported for key type {kt.api_name}")
    ver = version
    if ver == 0:
        ver = policy.latest_version
    elif ver < 0:
        raise BadRequestError("requested version for encryption is negative")
    elif ver > policy.latest_version:
        raise BadRequestError(
            "requested version for encryption is higher than the latest key version")
    elif ver < policy.min_encryption_version:
        raise BadRequestError("requested version for encryption is less than the minimum "
                              "encryption key version")
    if kt.is_rsa:
        out = _rsa_encrypt(policy, ver, plaintext)
    else:
        enc_bytes = 16 if kt is KeyType.AES128_GCM96 else 32
        cv = policy.convergent_version_of(ver)
        if cv > 2:
            if nonce:
                raise BadRequestError("nonce provided when not allowed")
        elif nonce and (not policy.convergent_encryption or cv != 1):
            raise BadRequestError("nonce provided when not allowed")
        if policy.convergent_encryption:
            out = _convergent(policy, ver, cv, enc_bytes, plaintext, context, associated_data)
        else:
            aead = _aead(policy, ver, context, enc_bytes, for_encrypt=True)
            size = nonce_size(policy)
            if not nonce:
                nonce = random[:size] if random and len(random) >= size else os.urandom(size)
            elif len(nonce) != size:
                raise BadRequestError(f"base64-decoded nonce must be {size} bytes long "
                                      f"but given {len(nonce)} bytes")
            out = nonce + aead.encrypt(nonce, plaintext, associated_data)
    if not out:
        raise TransitInternalError("empty ciphertext returned")
    return policy.version_prefix(ver) + base64.b64encode(out).decode()


def _convergent(policy: Policy, ver: int, cv: int, enc_bytes: int, plaintext: bytes,
                context: bytes | None, associated_data: bytes | None) -> bytes:

    hmac_bytes = 32 if cv > 2 else 0
    key = policy.get_key(context, ver, enc_bytes + hmac_bytes)
    if len(key) < enc_bytes + hmac_bytes:
        raise TransitInternalError("could not derive key, length too small")
    aead = _new_aead(policy, key[:enc_bytes])
    if 0 < cv < CURRENT_CONVERGENT_VERSION:
        raise BadRequestError("refusing to support decryption with old convergent "
                              f"encryption key: version {cv}")
    if cv != CURRENT_CONVERGENT_VERSION:
        raise TransitInternalError(f"unhandled convergent version {cv}")
    hmac_key = key[enc_bytes:]
    nonce = hmac.new(hmac_key, plaintext, hashlib.sha256).digest()[:nonce_size(policy)]
    return nonce + aead.encrypt(nonce, plaintext, associated_data)


def _rsa_encrypt(policy: Policy, ver: int, plaintext: bytes) -> bytes:

    public = policy.key_entry_exact(ver).rsa_public()
    if public is None:
        raise TransitInternalError("failed to RSA encrypt the plaintext: no public key")
    k = (public.key_size + 7) // 8
    if len(plaintext) > k - 2 * 32 - 2:
        raise TransitInternalError("failed to RSA encrypt the plaintext: "
                                   "crypto/rsa: message too long for RSA key size")
    return public.encrypt(plaintext, _OAEP)


def parse_version(policy: Policy, value: str) -> tuple[int, str]:
    """The version and base64 body of ``value``, with Vault's checks in Vault's order."""

    template = policy.version_template or DEFAULT_VERSION_TEMPLATE
    head, sep, tail = template.partition("{{version}}")
    if not value.startswith(head):
        raise BadRequestError("invalid ciphertext: no prefix")
    fields = value[len(head):].split(tail, 1) if tail else [value[len(head):]]
    if len(fields) != 2:
        raise BadRequestError("invalid ciphertext: wrong number of fields")
    try:
        ver = atoi(fields[0])
    except ValueError:
        raise BadRequestError("invalid ciphertext: version number could not be decoded") from None
    if ver == 0:
        ver = 1  # the first implementation numbered from zero
    if ver > policy.latest_version:
        raise BadRequestError("invalid ciphertext: version is too new")
    if policy.min_decryption_version > 0 and ver < policy.min_decryption_version:
        raise BadRequestError(ERR_TOO_OLD)
    return ver, fields[1]


def decrypt(policy: Policy, value: str, *, context: bytes | None,
            associated_data: bytes | None) -> bytes:

    if policy.soft_deleted:
        raise BadRequestError(ERR_SOFT_DELETED)
    kt = policy.type
    if not kt.decryption_supported:
        raise BadRequestError(f"message decryption not supported for key type {kt.api_name}")
    ver, body = parse_version(policy, value)
    cv = policy.convergent_version_of(ver)
    if policy.convergent_encryption and 0 < cv < CURRENT_CONVERGENT_VERSION:
        raise BadRequestError("refusing to support decryption with old convergent "
                              f"encryption key: version {cv}")
    try:
        decoded = b64decode(body)
    except Base64Error:
        raise BadRequestError("invalid ciphertext: could not decode base64") from None
    if kt.is_rsa:
        entry = policy.key_entry_exact(ver)
        if entry.rsa_key is None:
            raise TransitInternalError("cannot decrypt ciphertext, key version does not "
                                       "have a private counterpart")
        try:
            return entry.rsa_key.decrypt(decoded, _OAEP)
        except ValueError:
            raise TransitInternalError("failed to RSA decrypt the ciphertext: "
                                       "crypto/rsa: decryption error") from None
    num_bytes = 16 if kt is KeyType.AES128_GCM96 else 32
    aead = _aead(policy, ver, context, num_bytes)
    pcv = policy.convergent_version
    if policy.convergent_encryption and 0 < pcv < CURRENT_CONVERGENT_VERSION:
        raise BadRequestError("refusing to support decryption with old convergent "
                              f"encryption key: version {pcv}")
    size = nonce_size(policy)
    if len(decoded) < size:
        raise BadRequestError("invalid ciphertext length")
    try:
        return bytes(aead.decrypt(decoded[:size], decoded[size:], associated_data))
    except (InvalidTag, ValueError):
        raise _auth_failed(policy) from None
