"""Transit key types (Vault's keysutil numbers and names), shared constants and the
internal-error type; policy.py re-exports all of it."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum

from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.errors import StrongroomError

KDF_HMAC_SHA256_COUNTER = 0
KDF_HKDF_SHA256 = 1
HMAC_MIN_KEY_SIZE = 32
HMAC_MAX_KEY_SIZE = 512
CURRENT_CONVERGENT_VERSION = 3
DEFAULT_VERSION_TEMPLATE = "vault:v{{version}}:"
ERR_TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"
ERR_SOFT_DELETED = "refusing to use soft-deleted key"
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


class TransitInternalError(StrongroomError):
    """Vault's ``errutil.InternalError`` (or an untyped error): a 500. The message is
    Vault's plain text (as a batch item shows it); ``TransitBackend.handle`` wraps it in
    go-multierror's text when it fails a whole request, as Vault's core does."""

    status = 500


class KeyType(IntEnum):
    AES256_GCM96 = 0
    ECDSA_P256 = 1
    ED25519 = 2
    RSA2048 = 3
    RSA4096 = 4
    CHACHA20_POLY1305 = 5
    ECDSA_P384 = 6
    ECDSA_P521 = 7
    AES128_GCM96 = 8
    RSA3072 = 9
    HMAC = 10
    XCHACHA20_POLY1305 = 11  # OpenBao has it too (not in the list)

    @property
    def api_name(self) -> str:
        return _NAMES[self]

    @classmethod
    def from_name(cls, name: str) -> KeyType | None:
        return _BY_NAME.get(name)

    @property
    def encryption_supported(self) -> bool:
        return self in _SYMMETRIC or self in _RSA

    decryption_supported = encryption_supported

    @property
    def signing_supported(self) -> bool:
        return self in _ECDSA or self in _RSA or self is KeyType.ED25519

    @property
    def hash_signature_input(self) -> bool:
        return self in _ECDSA or self in _RSA

    @property
    def derivation_supported(self) -> bool:
        return self in _SYMMETRIC or self is KeyType.ED25519

    @property
    def associated_data_supported(self) -> bool:
        return self in _SYMMETRIC

    @property
    def import_public_key_supported(self) -> bool:
        return self in _ECDSA or self in _RSA or self is KeyType.ED25519

    @property
    def asymmetric(self) -> bool:
        return self in _ECDSA or self in _RSA or self is KeyType.ED25519

    @property
    def symmetric(self) -> bool:
        """AES-GCM or ChaCha20-Poly1305: an AEAD with a raw key."""
        return self in _SYMMETRIC

    @property
    def is_rsa(self) -> bool:
        return self in _RSA

    @property
    def is_ecdsa(self) -> bool:
        return self in _ECDSA

    def __str__(self) -> str:  # Go's %v of a KeyType
        return _NAMES[self]


_NAMES = {
    KeyType.AES128_GCM96: "aes128-gcm96", KeyType.AES256_GCM96: "aes256-gcm96",
    KeyType.CHACHA20_POLY1305: "chacha20-poly1305", KeyType.ECDSA_P256: "ecdsa-p256",
    KeyType.ECDSA_P384: "ecdsa-p384", KeyType.ECDSA_P521: "ecdsa-p521",
    KeyType.ED25519: "ed25519", KeyType.RSA2048: "rsa-2048", KeyType.RSA3072: "rsa-3072",
    KeyType.RSA4096: "rsa-4096", KeyType.HMAC: "hmac",
    KeyType.XCHACHA20_POLY1305: "xchacha20-poly1305",
}
_BY_NAME = {name: kt for kt, name in _NAMES.items()}
_SYMMETRIC = frozenset({KeyType.AES128_GCM96, KeyType.AES256_GCM96,
                        KeyType.XCHACHA20_POLY1305,
                        KeyType.CHACHA20_POLY1305})
_RSA = frozenset({KeyType.RSA2048, KeyType.RSA3072, KeyType.RSA4096})
_ECDSA = frozenset({KeyType.ECDSA_P256, KeyType.ECDSA_P384, KeyType.ECDSA_P521})
RSA_BITS = {KeyType.RSA2048: 2048, KeyType.RSA3072: 3072, KeyType.RSA4096: 4096}
EC_CURVES: dict[KeyType, type[ec.EllipticCurve]] = {
    KeyType.ECDSA_P256: ec.SECP256R1, KeyType.ECDSA_P384: ec.SECP384R1,
    KeyType.ECDSA_P521: ec.SECP521R1}
# Go's elliptic curve names, shown as a version's "name" by keys/<name>.
EC_CURVE_NAMES = {KeyType.ECDSA_P256: "P-256", KeyType.ECDSA_P384: "P-384",
                  KeyType.ECDSA_P521: "P-521"}


