"""BYOK crypto: unwrapping an imported key, parsing it, and encoding keys for export.

Errors are OpenBao's: its plain errors (500s, ``TransitInternalError``) with its
words, except the one it answers 400 (an unknown ``hash_function``).

Import (Vault's ``keys/<name>/import``) uses PKCS#11's CKM_RSA_AES_KEY_WRAP: the
client makes an ephemeral AES-256 key, encrypts it with RSA-OAEP under the mount's
wrapping key (the OAEP hash is the request's ``hash_function``, used for MGF1 too,
empty label, as Go's ``rsa.EncryptOAEP``), then wraps the target key with AES-KWP
(RFC 5649) under the ephemeral key. The ciphertext is the 512-byte RSA-4096 block
followed by the KWP output. Symmetric targets are the raw key bytes, asymmetric ones
a PKCS#8 DER private key.

Export encodings follow OpenBao's ``path_export.go`` byte for byte: Go's PEM
writer (64-column lines, trailing newline kept for RSA, trimmed for EC/ed25519),
PKCS#1 for RSA and SEC 1 for EC by default, PKCS#8 for ``der``/``pem``.
Nothing here logs; the ephemeral key is wiped as soon as the target is unwrapped.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.exceptions import InvalidKey, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
)

from strongroom.barrier.secmem import wipe
from strongroom.errors import BadRequestError

from .keytypes import TransitInternalError

# OpenBao's EncryptedKeyBytes: the RSA-4096 OAEP block in front of the KWP output.
ENCRYPTED_KEY_BYTES = 512

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA1": hashes.SHA1,
    "SHA224": hashes.SHA224,
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}

_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ecdsa-p256": ec.SECP256R1,
    "ecdsa-p384": ec.SECP384R1,
    "ecdsa-p521": ec.SECP521R1,
}
_CURVE_NAMES = {"ecdsa-p256": "P-256", "ecdsa-p384": "P-384", "ecdsa-p521": "P-521"}
_GO_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_RSA_BYTES = {"rsa-2048": 256, "rsa-3072": 384, "rsa-4096": 512}
SYMMETRIC = {"aes128-gcm96": 16, "aes256-gcm96": 32, "chacha20-poly1305": 32}
# Vault's KeyType numbers -> API names (keysutil's KeyType.String()).
TYPE_NAMES = {0: "aes256-gcm96", 1: "ecdsa-p256", 2: "ed25519", 3: "rsa-2048", 4: "rsa-4096",
              5: "chacha20-poly1305", 6: "ecdsa-p384", 7: "ecdsa-p521", 8: "aes128-gcm96",
              9: "rsa-3072", 10: "hmac"}
TYPE_NUMBERS = {name: number for number, name in TYPE_NAMES.items()}
# keysutil's HmacMinKeySize / HmacMaxKeySize.
HMAC_MIN, HMAC_MAX = 32, 512


def oaep_hash(name: str) -> hashes.HashAlgorithm:
    """The OAEP hash for ``hash_function`` (any case), as OpenBao's parseHashFn."""
    algo = _HASHES.get(name.upper())
    if algo is None:
        raise BadRequestError(f"unknown hash function: {name}")
    return algo()


def unwrap(ciphertext: bytes, wrapping_key: rsa.RSAPrivateKey,
           algo: hashes.HashAlgorithm) -> bytearray:
    """The target key inside an import ciphertext (raw bytes or PKCS#8 DER).

    Errors say what OpenBao says; none of them reveals which byte was wrong.
    """
    if len(ciphertext) <= ENCRYPTED_KEY_BYTES:
        raise TransitInternalError("provided ciphertext is too short")
    try:
        eph = bytearray(wrapping_key.decrypt(
            ciphertext[:ENCRYPTED_KEY_BYTES],
            padding.OAEP(mgf=padding.MGF1(algorithm=algo), algorithm=algo, label=None)))
    except ValueError:
        raise TransitInternalError("crypto/rsa: decryption error") from None
    try:
        if len(eph) != 32:
            raise TransitInternalError("expected ephemeral AES key to be 256-bit")
        wrapped = ciphertext[ENCRYPTED_KEY_BYTES:]
        # tink's KWP (OpenBao's) checks, in its order and words.
        if len(wrapped) < 24:
            raise TransitInternalError("kwp: wrapped key size too small")
        if len(wrapped) % 8:
            raise TransitInternalError("kwp: wrapped key size must be a multiple of 8 bytes")
        try:
            return bytearray(aes_key_unwrap_with_padding(bytes(eph), wrapped))
        except (InvalidUnwrap, InvalidKey, ValueError):
            raise TransitInternalError("kwp: unwrap failed integrity check") from None
    finally:
        wipe(eph)


@dataclass
class ParsedKey:
    """An imported key, private or public, in the shape a KeyEntry stores it."""

    key: bytes = b""  # ed25519: Go's 64-byte private key (seed || public)
    ec_x: int | None = None
    ec_y: int | None = None
    ec_d: int | None = None
    rsa_key: rsa.RSAPrivateKey | None = None
    rsa_public_key: rsa.RSAPublicKey | None = None
    public_key: str = ""  # Vault's formatted public key (PEM, or base64 for ed25519)


def _spkipem_block(pub: object) -> str:
    return pub.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _go_type(parsed: object) -> str:
    """Go's %T of what x509 would have parsed."""
    for cls, name in ((ed25519.Ed25519PrivateKey, "ed25519.PrivateKey"),
                      (ed25519.Ed25519PublicKey, "ed25519.PublicKey"),
                      (rsa.RSAPrivateKey, "*rsa.PrivateKey"),
                      (rsa.RSAPublicKey, "*rsa.PublicKey"),
                      (ec.EllipticCurvePrivateKey, "*ecdsa.PrivateKey"),
                      (ec.EllipticCurvePublicKey, "*ecdsa.PublicKey")):
        if isinstance(parsed, cls):
            return name
    return "*ecdh.PrivateKey"  # X25519/X448: what else PKCS#8 may hold


def _type_error(key_type: str, got: object) -> TransitInternalError:
    return TransitInternalError(f"invalid key type: expected {key_type}, got {_go_type(got)}")


def parse_asymmetric(key_type: str, material: bytes, private: bool) -> ParsedKey:
    """A PKCS#8 DER private key or a PEM SubjectPublicKeyInfo public key of ``key_type``."""
    parsed: object
    if private:
        try:
            parsed = serialization.load_der_private_key(material, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise TransitInternalError(
                "error parsing asymmetric key: x509: failed to parse private key") from None
    else:
        if b"-----BEGIN" not in material:
            raise TransitInternalError("error parsing public key: not in PEM format")
        try:
            parsed = serialization.load_pem_public_key(material)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise TransitInternalError("error parsing public key: not in PEM format") from None
    out = ParsedKey()
    if key_type in _CURVES:
        if not isinstance(parsed, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
            raise _type_error(key_type, parsed)
        if not isinstance(parsed.curve, _CURVES[key_type]):
            raise TransitInternalError(
                f"invalid curve: expected {_CURVE_NAMES[key_type]}, "
                f"got {_GO_CURVES.get(parsed.curve.name, parsed.curve.name)}")
        pub = parsed.public_key() if isinstance(parsed, ec.EllipticCurvePrivateKey) else parsed
        numbers = pub.public_numbers()
        out.ec_x, out.ec_y = numbers.x, numbers.y
        if isinstance(parsed, ec.EllipticCurvePrivateKey):
            out.ec_d = parsed.private_numbers().private_value
        # OpenBao keeps the PEM with its trailing newline for EC keys.
        out.public_key = _spkipem_block(pub)
    elif key_type == "ed25519":
        if isinstance(parsed, ed25519.Ed25519PrivateKey):
            seed = parsed.private_bytes(serialization.Encoding.Raw,
                                        serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption())
            pub_raw = parsed.public_key().public_bytes(serialization.Encoding.Raw,
                                                       serialization.PublicFormat.Raw)
            out.key = seed + pub_raw
        elif isinstance(parsed, ed25519.Ed25519PublicKey):
            pub_raw = parsed.public_bytes(serialization.Encoding.Raw,
                                          serialization.PublicFormat.Raw)
        else:
            raise _type_error(key_type, parsed)
        out.public_key = base64.b64encode(pub_raw).decode()
    elif key_type in _RSA_BYTES:
        if not isinstance(parsed, rsa.RSAPrivateKey | rsa.RSAPublicKey):
            raise _type_error(key_type, parsed)
        size = (parsed.key_size + 7) // 8
        if size != _RSA_BYTES[key_type]:
            raise TransitInternalError(f"invalid key size: expected {_RSA_BYTES[key_type]} "
                                  f"bytes, got {size} bytes")
        if isinstance(parsed, rsa.RSAPrivateKey):
            out.rsa_key = parsed
            out.rsa_public_key = parsed.public_key()
        else:
            out.rsa_public_key = parsed
    else:
        raise _type_error(key_type, parsed)
    return out


# --- export encodings (OpenBao's getExportKey) ---------------------------------------


def pem_block(der: bytes, label: str) -> str:
    """Go's pem.EncodeToMemory: 64-column base64 lines, a trailing newline."""
    b64 = base64.b64encode(der).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def export_rsa_private(key: rsa.RSAPrivateKey | None, fmt: str) -> str:
    if fmt == "raw":
        raise TransitInternalError(
            "unknown key format for rsa key; supported values are ``, `der`, or `pem`")
    if key is None:
        return ""
    if fmt == "":
        der = key.private_bytes(serialization.Encoding.DER,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
        return pem_block(der, "RSA PRIVATE KEY")
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return base64.b64encode(der).decode() if fmt == "der" else pem_block(der, "PRIVATE KEY")


def export_rsa_public(key: rsa.RSAPublicKey | None, fmt: str) -> str:
    if fmt == "raw":
        raise TransitInternalError(
            "unknown key format for rsa key; supported values are ``, `der`, or `pem`")
    if key is None:
        raise TransitInternalError("requested to encode an RSA public key with no RSA key present")
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode() if fmt == "der" else pem_block(der, "PUBLIC KEY")


def _ec_private(key_type: str, x: int | None, y: int | None,
                d: int) -> ec.EllipticCurvePrivateKey:
    curve = _CURVES[key_type]()
    if x is None or y is None:
        return ec.derive_private_key(d, curve)
    return ec.EllipticCurvePrivateNumbers(d, ec.EllipticCurvePublicNumbers(x, y, curve)
                                          ).private_key()


def export_ec_private(key_type: str, x: int | None, y: int | None, d: int | None,
                      fmt: str) -> str:
    if fmt == "raw":
        raise TransitInternalError(
            "unknown key format for ec key; supported values are ``, `der`, or `pem`")
    if d is None:
        return ""
    key = _ec_private(key_type, x, y, d)
    if fmt == "":
        der = key.private_bytes(serialization.Encoding.DER,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
        return pem_block(der, "EC PRIVATE KEY").strip()
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return base64.b64encode(der).decode() if fmt == "der" else pem_block(der, "PRIVATE KEY").strip()


def export_ec_public(key_type: str, x: int | None, y: int | None, fmt: str) -> str:
    if fmt == "raw":
        raise TransitInternalError(
            "unknown key format for ec key; supported values are ``, `der`, or `pem`")
    if x is None or y is None:
        raise TransitInternalError("key version has no public key")
    pub = ec.EllipticCurvePublicNumbers(x, y, _CURVES[key_type]()).public_key()
    der = pub.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode() if fmt == "der" else pem_block(der, "PUBLIC KEY").strip()


def export_ed25519_private(key: bytes, fmt: str) -> str:
    if fmt in ("", "raw"):
        return base64.b64encode(key).decode()
    priv = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(key[:32]))
    der = priv.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    return base64.b64encode(der).decode() if fmt == "der" else pem_block(der, "PRIVATE KEY").strip()


def export_ed25519_public(formatted: str, fmt: str) -> str:
    pub_str = formatted.strip()
    if fmt in ("", "raw"):
        return pub_str
    try:
        pub = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(pub_str,
                                                                          validate=True))
    except ValueError:
        raise TransitInternalError("illegal base64 data in the stored public key") from None
    der = pub.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode() if fmt == "der" else pem_block(der, "PUBLIC KEY").strip()
