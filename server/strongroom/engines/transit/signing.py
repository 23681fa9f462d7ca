"""Signatures and HMAC keys for transit, with OpenBao's byte formats and rules.

Follows keysutil's ``SignWithOptions``/``VerifySignatureWithOptions`` and
``HMACKey`` (Vault's semantics, re-implemented on ``cryptography``):

* ed25519 signs the input itself (never hashed, ``prehashed`` ignored); a derived
  key's seed is HKDF-SHA256(key, info=context), 32 bytes, as Go's
  ``ed25519.GenerateKey`` reading from the HKDF stream.
* ECDSA signs the digest bytes as given (Go truncates a long digest to the curve
  order, as OpenSSL does); ``asn1`` is DER ``SEQUENCE{r, s}``, ``jws`` is r || s
  each padded to the curve size, base64url without padding.
* RSA signs with PSS (default) or PKCS#1 v1.5; ``hash_algorithm=none`` with
  pkcs1v15 signs the input with no DigestInfo. Salt lengths are Go's numbers:
  0 = auto (largest when signing, detected when verifying), -1 = the hash size.
* Signatures and HMACs are ``vault:v<N>:<base64>``.

Errors: ``SignError`` (a 400) carries OpenBao's words, ``TransitInternalError`` (a
500, wrapped in go-multierror's text by TransitBackend) where OpenBao fails for
want of a usable key; in a batch the handler puts either text on the item. Where
OpenBao answers a client's mistake with a 500 (a missing derivation context, a
digest of the wrong size, a key version out of range on sign), this answers 400
with the same words (issue 14, point 5).

Key objects come from signing_keys (built once per key entry, then cached).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from strongroom.errors import BadRequestError

from . import signing_keys as keys
from .goencoding import Base64Error, atoi, b64decode, b64decode_raw_url
from .keytypes import ERR_SOFT_DELETED, ERR_TOO_OLD, KeyType, TransitInternalError
from .policy import KeyEntry, Policy
from .signing_keys import SignError

# keysutil.HashTypeMap names -> hashlib names ("none" hashes nothing).
HASHLIB_NAMES = {"sha1": "sha1", "sha2-224": "sha224", "sha2-256": "sha256",
                 "sha2-384": "sha384", "sha2-512": "sha512", "sha3-224": "sha3_224",
                 "sha3-256": "sha3_256", "sha3-384": "sha3_384", "sha3-512": "sha3_512"}
HASH_ALGORITHMS = frozenset({"none", *HASHLIB_NAMES})
_CRYPTO_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha2-224": hashes.SHA224, "sha2-256": hashes.SHA256,
    "sha2-384": hashes.SHA384, "sha2-512": hashes.SHA512, "sha3-224": hashes.SHA3_224,
    "sha3-256": hashes.SHA3_256, "sha3-384": hashes.SHA3_384, "sha3-512": hashes.SHA3_512}
MARSHALING = frozenset({"asn1", "jws"})
SALT_AUTO, SALT_HASH = 0, -1  # Go's rsa.PSSSaltLengthAuto / PSSSaltLengthEqualsHash
PREFIX = "vault:v"
# JWS: r and s each padded to the curve's size in bytes (P-521: 66).
_CURVE_BYTES = {KeyType.ECDSA_P256: 32, KeyType.ECDSA_P384: 48, KeyType.ECDSA_P521: 66}


@dataclass(frozen=True, slots=True)
class SigningOptions:
    hash_algorithm: str = "sha2-256"  # a HASH_ALGORITHMS name
    marshaling: str = "asn1"
    salt_length: int = SALT_AUTO
    signature_algorithm: str = ""  # "" means pss, as keysutil
    prehashed: bool = False


def parse_salt_length(raw: str) -> int:
    """The ``salt_length`` field: "auto", "hash" or an integer >= -1 (Go's values)."""
    lowered = raw.lower()
    if lowered == "auto":
        return SALT_AUTO
    if lowered == "hash":
        return SALT_HASH
    try:
        value = atoi(lowered)
    except ValueError:
        raise BadRequestError(
            f"salt length neither 'auto', 'hash', nor an int: {raw}") from None
    if value < SALT_HASH:
        raise BadRequestError(f"salt length is invalid: {value}")
    return value


def digest(key_type: KeyType, data: bytes, opts: SigningOptions) -> bytes:
    """What keysutil signs: ECDSA and RSA inputs are hashed unless prehashed."""
    if key_type.hash_signature_input and not opts.prehashed and opts.hash_algorithm != "none":
        return hashlib.new(HASHLIB_NAMES[opts.hash_algorithm], data).digest()
    return data


# -- sign and verify ---------------------------------------------------------------------

class _Digest(hashes.HashAlgorithm):
    """A digest of any size for ECDSA, which signs the bytes whatever made them."""

    name = "sha256"  # unused by ECDSA; the backend only checks the size
    block_size = None

    def __init__(self, size: int) -> None:
        self._size = size

    @property
    def digest_size(self) -> int:
        return self._size


def _pss_salt(bits: int, algo: hashes.HashAlgorithm, salt: int, signing: bool) -> Any:
    """The ``padding.PSS`` salt for Go's salt-length number, or a SignError."""
    maximum = (bits - 1 + 7) // 8 - 2 - algo.digest_size
    if not SALT_HASH <= salt <= maximum:
        raise SignError(f"requested salt length {salt} is invalid")
    if salt == SALT_AUTO:
        return padding.PSS.MAX_LENGTH if signing else padding.PSS.AUTO
    if salt == SALT_HASH:
        return padding.PSS.DIGEST_LENGTH
    return salt


def _rsa_algorithm(opts: SigningOptions) -> hashes.HashAlgorithm | None:
    return None if opts.hash_algorithm == "none" else _CRYPTO_HASHES[opts.hash_algorithm]()


def sign(policy: Policy, version: int, data: bytes, context: bytes,
         opts: SigningOptions) -> tuple[str, bytes | None]:
    """Sign ``data`` (already digested by ``digest``) with key ``version`` (0 = latest).

    Returns ``(signature, public_key)``: the derived public key for derived ed25519
    keys (OpenBao returns it), else None.
    """
    if policy.soft_deleted:
        raise SignError(ERR_SOFT_DELETED)
    key_type = policy.type
    latest = policy.latest_version
    if version == 0:
        version = latest
    elif version < 0:
        raise SignError("requested version for signing is negative")
    elif version > latest:
        raise SignError("requested version for signing is higher than the latest key version")
    elif policy.min_encryption_version > 0 and version < policy.min_encryption_version:
        raise SignError(
            "requested version for signing is less than the minimum encryption key version")
    entry = keys.entry(policy, version)
    if entry.private_key_missing():
        raise SignError("requested version for signing does not contain a private part")
    public: bytes | None = None
    if key_type.is_ecdsa:
        if not data:
            raise SignError("ecdsa: hash cannot be empty")
        der = keys.ec_private(key_type, entry).sign(
            data, ec.ECDSA(utils.Prehashed(_Digest(len(data)))))
        if opts.marshaling == "jws":
            size = _CURVE_BYTES[key_type]
            r, s = utils.decode_dss_signature(der)
            raw = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        else:
            raw = der
    elif key_type is KeyType.ED25519:
        if policy.derived:
            key = keys.derive_ed25519(policy, version, context)
            public = key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        else:
            key = keys.ed_private(entry)
        raw = key.sign(data)
    elif key_type.is_rsa and entry.rsa_key is not None:
        raw = _rsa_sign(entry.rsa_key, data, opts)
    else:
        raise TransitInternalError(f"message signing not supported for key type {key_type}")
    return f"{PREFIX}{version}:{_encode(raw, opts.marshaling)}", public


def _rsa_sign(key: rsa.RSAPrivateKey, data: bytes, opts: SigningOptions) -> bytes:
    algo = _rsa_algorithm(opts)
    method = opts.signature_algorithm or "pss"
    size = (key.key_size + 7) // 8
    if method == "pss":
        if algo is None:  # unreachable through the API: none requires pkcs1v15
            raise SignError("crypto/rsa: input must be hashed with given hash")
        salt = _pss_salt(key.key_size, algo, opts.salt_length, signing=True)
        if len(data) != algo.digest_size:
            raise SignError("crypto/rsa: input must be hashed with given hash")
        return key.sign(data, padding.PSS(padding.MGF1(algo), salt), utils.Prehashed(algo))
    if method == "pkcs1v15":
        if algo is None:
            if len(data) + 11 > size:
                raise SignError("crypto/rsa: message too long for RSA key size")
            return key.sign(data, padding.PKCS1v15(), utils.NoDigestInfo())
        if len(data) != algo.digest_size:
            raise SignError("crypto/rsa: input must be hashed message")
        return key.sign(data, padding.PKCS1v15(), utils.Prehashed(algo))
    raise SignError(f"unsupported rsa signature algorithm {method}")


def _encode(raw: bytes, marshaling: str) -> str:
    if marshaling == "jws":
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return base64.b64encode(raw).decode()


def split_versioned(value: str, what: str) -> tuple[int, str]:
    """``vault:v<N>:<rest>`` -> (N, rest), with keysutil's signature errors."""
    if not value.startswith(PREFIX):
        raise SignError(f"invalid {what}: no prefix")
    version_text, sep, rest = value[len(PREFIX):].partition(":")
    if not sep:
        raise SignError(f"invalid {what}: wrong number of fields")
    try:
        version = atoi(version_text)
    except ValueError:
        raise SignError(f"invalid {what}: version number could not be decoded") from None
    return version, rest


def verify(policy: Policy, data: bytes, signature: str, context: bytes,
           opts: SigningOptions) -> bool:
    """Whether ``signature`` (``vault:v<N>:...``) is valid for ``data`` (digested)."""
    if policy.soft_deleted:
        raise SignError(ERR_SOFT_DELETED)
    key_type = policy.type
    version, encoded = split_versioned(signature, "signature")
    if version > policy.latest_version:
        raise SignError("invalid signature: version is too new")
    if policy.min_decryption_version > 0 and version < policy.min_decryption_version:
        raise SignError(ERR_TOO_OLD)
    try:
        raw = (b64decode_raw_url(encoded) if opts.marshaling == "jws" else b64decode(encoded))
    except Base64Error:
        raise SignError("invalid base64 signature value") from None
    if key_type.is_ecdsa:
        # keysutil parses an ECDSA signature before it looks the version up.
        r, s = _ecdsa_numbers(raw, opts)
        return _ecdsa_verify(key_type, keys.entry(policy, version), data, r, s)
    if key_type is KeyType.ED25519:
        if policy.derived:
            public = keys.derive_ed25519(policy, version, context).public_key()
        else:
            public = keys.ed_public(keys.entry(policy, version))
        if len(raw) != 64:
            return False
        try:
            public.verify(raw, data)
        except InvalidSignature:
            return False
        return True
    if key_type.is_rsa:
        return _rsa_verify(keys.rsa_public(keys.entry(policy, version)), data, raw, opts)
    raise SignError(f"message verification not supported for key type {key_type}")


def _ecdsa_numbers(raw: bytes, opts: SigningOptions) -> tuple[int, int]:
    if opts.marshaling == "jws":
        half = len(raw) // 2
        return int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
    return parse_der_signature(raw)


def _ecdsa_verify(key_type: KeyType, entry: KeyEntry, data: bytes, r: int, s: int) -> bool:
    if r <= 0 or s <= 0 or not data:
        return False
    try:
        keys.ec_public(key_type, entry).verify(utils.encode_dss_signature(r, s), data,
                                           ec.ECDSA(utils.Prehashed(_Digest(len(data)))))
    except (InvalidSignature, ValueError):  # ValueError: numbers no DER can carry
        return False
    return True


def _rsa_verify(public: rsa.RSAPublicKey, data: bytes, raw: bytes,
                opts: SigningOptions) -> bool:
    algo = _rsa_algorithm(opts)
    method = opts.signature_algorithm or "pss"
    try:
        if method == "pss":
            if algo is None:
                return False
            salt = _pss_salt(public.key_size, algo, opts.salt_length, signing=False)
            if len(data) != algo.digest_size:
                return False
            public.verify(raw, data, padding.PSS(padding.MGF1(algo), salt),
                          utils.Prehashed(algo))
        elif method == "pkcs1v15":
            if algo is None:
                # cryptography's stub omits NoDigestInfo for verify; it takes it at run time.
                public.verify(raw, data, padding.PKCS1v15(),
                              utils.NoDigestInfo())  # type: ignore[arg-type]
            else:
                if len(data) != algo.digest_size:
                    return False
                public.verify(raw, data, padding.PKCS1v15(), utils.Prehashed(algo))
        else:
            raise SignError(f"unsupported rsa signature algorithm {method}")
    except (InvalidSignature, ValueError):
        return False
    return True


def parse_der_signature(raw: bytes) -> tuple[int, int]:
    """Go's ``asn1.Unmarshal`` into ``struct{R, S *big.Int}``, its checks and errors.

    DER only (minimal lengths and integers); bytes after the two integers inside
    the SEQUENCE are allowed, bytes after the SEQUENCE are not.
    """
    tag, body, rest = _der_element(raw)
    if tag != 0x30:
        raise SignError("supplied signature is invalid")
    values = []
    for _ in range(2):
        tag, content, body = _der_element(body)
        if tag != 0x02 or not content or (len(content) > 1 and (
                (content[0] == 0 and content[1] < 0x80)
                or (content[0] == 0xFF and content[1] >= 0x80))):
            raise SignError("supplied signature is invalid")
        values.append(int.from_bytes(content, "big", signed=True))
    if rest:
        raise SignError("supplied signature contains extra data")
    return values[0], values[1]


def _der_element(data: bytes) -> tuple[int, bytes, bytes]:
    invalid = SignError("supplied signature is invalid")
    if len(data) < 2 or data[0] & 0x1F == 0x1F:
        raise invalid
    tag, first = data[0], data[1]
    offset = 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 3 or len(data) < 2 + count or data[2] == 0:
            raise invalid  # indefinite, too long, truncated or padded length
        length = int.from_bytes(data[2:2 + count], "big")
        if length < 0x80:
            raise invalid  # non-minimal length
        offset += count
    end = offset + length
    if end > len(data):
        raise invalid
    return tag, data[offset:end], data[end:]


# -- HMAC --------------------------------------------------------------------------------

def hmac_key(policy: Policy, version: int) -> bytes:
    """keysutil's ``HMACKey``: an hmac key's own key, else the version's hmac_key."""
    if policy.soft_deleted:
        raise SignError(ERR_SOFT_DELETED)
    if version < 0:
        raise SignError("key version does not exist (cannot be negative)")
    if version > policy.latest_version:
        raise SignError(
            f"key version does not exist; latest key version is {policy.latest_version}")
    entry = keys.entry(policy, version)
    if policy.type is KeyType.HMAC:
        return bytes(entry.key or b"")
    if not entry.hmac_key:
        raise SignError("no HMAC key exists for that key version")
    return bytes(entry.hmac_key)
