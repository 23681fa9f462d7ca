"""The client side of transit BYOK, as `bao transit import` does it, for tests.

``wrap_for_import`` turns a key into the ``ciphertext`` of ``keys/<name>/import``
for the server whose ``wrapping_key`` (PEM) is given: RSA-OAEP of a fresh AES-256 key,
then that key's AES-KWP (RFC 5649) of the target (raw bytes for symmetric keys,
PKCS#8 DER for private keys). Keys made here are test material, made at test time.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA1": hashes.SHA1, "SHA224": hashes.SHA224, "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384, "SHA512": hashes.SHA512,
}


def pkcs8(key: Any) -> bytes:
    """A private key object as PKCS#8 DER (what the import expects for asymmetric keys)."""
    return bytes(key.private_bytes(serialization.Encoding.DER,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def wrap_for_import(wrapping_key_pem: str, target: bytes, hash_function: str = "SHA256",
                    ephemeral: bytes | None = None) -> str:
    """base64(RSA-OAEP(ephemeral AES-256 key) || AES-KWP(ephemeral, target))."""
    pub = serialization.load_pem_public_key(wrapping_key_pem.encode())
    assert isinstance(pub, rsa.RSAPublicKey)
    eph = ephemeral if ephemeral is not None else os.urandom(32)
    algo = HASHES[hash_function.upper()]()
    wrapped_eph = pub.encrypt(eph, padding.OAEP(mgf=padding.MGF1(algorithm=algo),
                                                algorithm=algo, label=None))
    return base64.b64encode(wrapped_eph + aes_key_wrap_with_padding(eph, target)).decode()


def new_key_material(key_type: str) -> tuple[bytes, Any]:
    """Fresh material for ``key_type``: (bytes to wrap, private key object or None)."""
    sizes = {"aes128-gcm96": 16, "aes256-gcm96": 32, "chacha20-poly1305": 32, "hmac": 32}
    if key_type in sizes:
        return os.urandom(sizes[key_type]), None
    key: Any
    if key_type.startswith("rsa-"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    elif key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        curve = {"ecdsa-p256": ec.SECP256R1(), "ecdsa-p384": ec.SECP384R1(),
                 "ecdsa-p521": ec.SECP521R1()}[key_type]
        key = ec.generate_private_key(curve)
    return pkcs8(key), key


def public_pem(key: Any) -> str:
    return str(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
