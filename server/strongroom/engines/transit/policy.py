"""The transit key model: Vault's keysutil ``Policy`` (a named key ring) and ``KeyEntry``
(one version), with key generation, rotation, derivation and encryption.

Behaviour, numbers and error texts follow OpenBao's ``sdk/helper/keysutil/policy.go``
so that a key restored from an OpenBao backup decrypts OpenBao's ciphertexts and the
reverse. The byte layouts are Vault's: a symmetric ciphertext is
``vault:v<N>:`` + base64(nonce || ciphertext || tag); RSA is RSA-OAEP with SHA-256.

Errors: ``BadRequestError`` where Vault returns a ``UserError`` (400);
``TransitInternalError`` (500) where Vault returns an ``InternalError`` or a plain error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.errors import BadRequestError

from . import cipher
from .cipher import AEAD
from .keytypes import (
    _ECDSA,
    _RSA,
    _SYMMETRIC,
    CURRENT_CONVERGENT_VERSION,
    DEFAULT_VERSION_TEMPLATE,
    EC_CURVE_NAMES,
    EC_CURVES,
    ERR_SOFT_DELETED,
    ERR_TOO_OLD,
    HMAC_MAX_KEY_SIZE,
    HMAC_MIN_KEY_SIZE,
    KDF_HKDF_SHA256,
    KDF_HMAC_SHA256_COUNTER,
    RSA_BITS,
    ZERO_TIME,
    KeyType,
    TransitInternalError,
)

__all__ = [
    "CURRENT_CONVERGENT_VERSION", "DEFAULT_VERSION_TEMPLATE", "EC_CURVES", "EC_CURVE_NAMES",
    "ERR_SOFT_DELETED", "ERR_TOO_OLD", "KDF_HKDF_SHA256", "KDF_HMAC_SHA256_COUNTER",
    "RSA_BITS", "BackupInfo", "KeyEntry", "KeyType", "Policy", "TransitInternalError",
    "new_key_entry", "new_policy",
]

@dataclass
class KeyEntry:
    """One key version (keysutil ``KeyEntry``)."""

    # Key material is kept out of repr(): a KeyEntry or Policy in a log line or a
    # traceback must not carry it.
    key: bytes | None = field(default=None, repr=False)  # raw; ed25519: seed || public
    hmac_key: bytes | None = field(default=None, repr=False)  # hmac/'s key, every version
    time: datetime = ZERO_TIME  # creation
    time_nanos: int = 0  # Go keeps nanoseconds: the digits past the microsecond
    ec_x: int | None = None
    ec_y: int | None = None
    ec_d: int | None = field(default=None, repr=False)
    rsa_key: rsa.RSAPrivateKey | None = field(default=None, repr=False)
    rsa_public_key: rsa.RSAPublicKey | None = None
    public_key: str = ""  # PEM for ECDSA (Vault fills it), base64 for ed25519
    convergent_version: int = 0
    creation_time: int = 0  # Vault's deprecated unix seconds, still written
    certificate_chain: list[bytes] | None = None
    external_key_ref: str = ""

    def private_key_missing(self) -> bool:
        return self.rsa_key is None and self.ec_d is None and not self.key

    def rsa_public(self) -> rsa.RSAPublicKey | None:
        if self.rsa_key is not None:
            return self.rsa_key.public_key()
        return self.rsa_public_key


def _random(n: int) -> bytes:
    return os.urandom(n)


def new_key_entry(key_type: KeyType, key_size: int = 0,
                  now: datetime | None = None) -> KeyEntry:
    """A fresh version of ``key_type`` (keysutil ``RotateInMemory``'s generation)."""
    when = now or datetime.now(UTC)
    entry = KeyEntry(time=when, creation_time=int(when.timestamp()), hmac_key=_random(32))
    if key_type in _SYMMETRIC or key_type is KeyType.HMAC:
        size = 16 if key_type is KeyType.AES128_GCM96 else 32
        if key_type is KeyType.HMAC:
            size = key_size
            if not HMAC_MIN_KEY_SIZE <= size <= HMAC_MAX_KEY_SIZE:
                raise TransitInternalError(
                    f"invalid key size for HMAC key, must be between {HMAC_MIN_KEY_SIZE} "
                    f"and {HMAC_MAX_KEY_SIZE} bytes")
        entry.key = _random(size)
        if key_type is KeyType.HMAC:
            entry.hmac_key = entry.key  # as Vault: HMACKey = Key
    elif key_type in _ECDSA:
        priv = ec.generate_private_key(EC_CURVES[key_type]())
        nums = priv.private_numbers()
        entry.ec_d, entry.ec_x, entry.ec_y = (nums.private_value, nums.public_numbers.x,
                                              nums.public_numbers.y)
        entry.public_key = cipher.public_pem(priv.public_key())
    elif key_type is KeyType.ED25519:
        seed = _random(32)
        pub = cipher.ed25519_public(seed)
        entry.key = seed + pub
        entry.public_key = base64.b64encode(pub).decode()
    elif key_type in _RSA:
        entry.rsa_key = rsa.generate_private_key(65537, RSA_BITS[key_type])
    return entry


@dataclass
class BackupInfo:
    time: datetime
    version: int
    time_nanos: int = 0


@dataclass(eq=False)
class Policy:
    """A named key ring (keysutil ``Policy``). ``keys`` holds the versions from
    ``min_decryption_version`` to ``latest_version``; older ones live in the archive
    (keystore.py moves them, as Vault's ``handleArchiving``)."""

    name: str
    type: KeyType = KeyType.AES256_GCM96
    keys: dict[int, KeyEntry] = field(default_factory=dict)
    derived: bool = False
    kdf: int = KDF_HMAC_SHA256_COUNTER
    convergent_encryption: bool = False
    convergent_version: int = 0
    exportable: bool = False
    min_decryption_version: int = 0
    min_encryption_version: int = 0
    latest_version: int = 0
    archive_version: int = 0
    archive_min_version: int = 0
    min_available_version: int = 0
    deletion_allowed: bool = False
    backup_info: BackupInfo | None = None
    restore_info: BackupInfo | None = None
    allow_plaintext_backup: bool = False
    version_template: str = ""
    storage_prefix: str = ""
    auto_rotate_period: int = 0  # seconds (Go: a time.Duration in ns)
    imported: bool = False
    allow_imported_key_rotation: bool = False
    soft_deleted: bool = False
    key_size: int = 0
    # Fields of a stored document this model does not know, kept for the round trip.
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    # Per-process caches: (key bytes, AEAD) per version. Checked by identity of the key
    # bytes, so replacing an entry (import_version) can never use a stale cipher.
    _aeads: dict[int, tuple[bytes | None, AEAD]] = field(default_factory=dict, repr=False)

    # -- versions ----------------------------------------------------------------------

    def rotate(self, now: datetime | None = None) -> None:
        """Add a new latest version (``RotateInMemory``); the caller persists."""
        if self.soft_deleted:
            raise BadRequestError(ERR_SOFT_DELETED)
        entry = new_key_entry(self.type, self.key_size, now)
        if self.convergent_encryption and (
                self.convergent_version == -1 or self.convergent_version > 1):
            entry.convergent_version = CURRENT_CONVERGENT_VERSION
        self.latest_version += 1
        self.keys[self.latest_version] = entry
        if self.min_decryption_version == 0:
            self.min_decryption_version = 1

    def key_entry(self, version: int = 0) -> KeyEntry:
        """The entry of ``version`` (0 = latest); Vault's "no such key version"."""
        entry = self.keys.get(version or self.latest_version)
        if entry is None:
            raise BadRequestError("no such key version")
        return entry

    def hmac_key(self, version: int) -> bytes:
        """Vault's ``HMACKey``: the key hmac/ uses for ``version`` (errors are 500s there)."""
        if self.soft_deleted:
            raise BadRequestError(ERR_SOFT_DELETED)
        if version < 0:
            raise TransitInternalError("key version does not exist (cannot be negative)")
        if version > self.latest_version:
            raise TransitInternalError(
                f"key version does not exist; latest key version is {self.latest_version}")
        entry = self.key_entry(version) if version else self.key_entry(self.latest_version)
        if self.type is KeyType.HMAC:
            return entry.key or b""
        if entry.hmac_key is None:
            raise TransitInternalError("no HMAC key exists for that key version")
        return entry.hmac_key

    # -- derivation ----------------------------------------------------------------------

    def get_key(self, context: bytes | None, version: int, num_bytes: int) -> bytes:
        """Vault's ``GetKey``: the raw key, or the derived one for derived policies."""
        if self.soft_deleted:
            raise BadRequestError(ERR_SOFT_DELETED)
        if not self.derived:
            return self.key_entry_exact(version).key or b""
        return self.derived_key(context, version, num_bytes)

    def key_entry_exact(self, version: int) -> KeyEntry:
        """``safeGetKeyEntry``: no 0-means-latest."""
        entry = self.keys.get(version)
        if entry is None:
            raise BadRequestError("no such key version")
        return entry

    def derived_key(self, context: bytes | None, version: int, num_bytes: int = 32,
                    salt: bytes = b"") -> bytes:
        """Vault's ``DeriveKey``: HKDF-SHA256 (kdf 1) or the counter-mode HMAC KDF (kdf 0).

        For ed25519 the result is the 64-byte private key (seed || public) generated
        from the first 32 derived bytes, as Go's ``ed25519.GenerateKey`` does."""
        if self.soft_deleted:
            raise BadRequestError(ERR_SOFT_DELETED)
        if not self.type.derivation_supported:
            raise BadRequestError(f"derivation not supported for key type {self.type.api_name}")
        if not self.keys or self.latest_version == 0:
            raise TransitInternalError("unable to access the key; no key versions found")
        if version <= 0 or version > self.latest_version:
            raise BadRequestError("invalid key version")
        if not context:
            raise BadRequestError(
                "missing 'context' for key derivation; the key was created using a derived "
                "key, which means additional, per-request information must be included in "
                "order to perform operations with the key")
        key = self.key_entry_exact(version).key or b""
        if self.kdf == KDF_HMAC_SHA256_COUNTER:
            # One round of the NIST SP 800-108 counter KDF: counter 0, 256 bits.
            data = b"\0\0\0\0" + context + salt + (256).to_bytes(4, "big")
            return hmac.new(key, data, hashlib.sha256).digest()
        if self.kdf != KDF_HKDF_SHA256:
            raise TransitInternalError("unsupported key derivation mode")
        if self.type is KeyType.ED25519:
            seed = HKDF(hashes.SHA256(), 32, salt or None, context).derive(key)
            return seed + cipher.ed25519_public(seed)
        return HKDF(hashes.SHA256(), num_bytes, salt or None, context).derive(key)

    def convergent_version_of(self, version: int) -> int:
        if not self.convergent_encryption:
            return 0
        current = self.convergent_version or 1
        entry = self.keys.get(version)
        if entry is not None and entry.convergent_version:
            current = entry.convergent_version
        return current

    # -- encryption ------------------------------------------------------------------------

    def version_prefix(self, version: int) -> str:
        if not self.version_template:
            return f"vault:v{version}:"
        return self.version_template.replace("{{version}}", str(version))

    def encrypt(self, plaintext: bytes, *, context: bytes | None = None,
                nonce: bytes | None = None, version: int = 0,
                associated_data: bytes | None = None, random: bytes | None = None) -> str:
        """Vault's ``EncryptWithFactory`` on decoded plaintext: ``vault:v<N>:<base64>``.

        ``nonce`` is a caller's nonce (refused as Vault refuses it); ``random`` is fresh
        output of os.urandom the engine drew for several items at once (batches: one
        system call instead of one per item), used as the random nonce when one is
        needed and long enough."""
        return cipher.encrypt(self, plaintext, context=context, nonce=nonce, random=random,
                              version=version, associated_data=associated_data)

    def decrypt(self, ciphertext: str, *, context: bytes | None = None,
                nonce: bytes | None = None, associated_data: bytes | None = None) -> bytes:
        """Vault's ``DecryptWithFactory``; returns the plaintext bytes."""
        return cipher.decrypt(self, ciphertext, context=context,
                              associated_data=associated_data)

    def ciphertext_version(self, ciphertext: str) -> int:
        """The key version a ciphertext names, with Vault's checks (0 counts as 1)."""
        return cipher.parse_version(self, ciphertext)[0]


def new_policy(name: str, key_type: KeyType, *, derived: bool = False,
               convergent: bool = False, exportable: bool = False,
               allow_plaintext_backup: bool = False, auto_rotate_period: int = 0,
               key_size: int = 0) -> Policy:
    """A new key ring with its first version (lock_manager's upsert branch).

    Raises the errors Vault's lock manager returns for impossible combinations."""
    if key_type in _SYMMETRIC:
        if convergent and not derived:
            raise TransitInternalError(
                "convergent encryption requires derivation to be enabled")
    elif key_type is KeyType.ED25519:
        if convergent:
            raise TransitInternalError(
                f"convergent encryption not supported for keys of type {key_type.api_name}")
    elif derived or convergent:
        raise TransitInternalError(
            f"key derivation and convergent encryption not supported for keys of type "
            f"{key_type.api_name}")
    policy = Policy(name=name, type=key_type, derived=derived, exportable=exportable,
                    allow_plaintext_backup=allow_plaintext_backup,
                    auto_rotate_period=auto_rotate_period, key_size=key_size)
    if derived:
        policy.kdf = KDF_HKDF_SHA256
        if convergent:
            policy.convergent_encryption = True
            policy.convergent_version = -1  # each version carries its own (>= 3)
    policy.rotate()
    return policy
