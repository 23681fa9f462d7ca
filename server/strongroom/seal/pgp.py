"""OpenPGP protection of the init output: Vault's ``pgp_keys`` and ``root_token_pgp_key``.

Wire format, as Vault and OpenBao produce it (so the same client tooling works):

* A public key arrives as standard base64 of the *binary* (unarmored) OpenPGP
  key, e.g. ``gpg --export KEYID | base64 -w0``. CR and LF inside the base64
  are ignored, as Go's decoder ignores them.
* Unseal key share ``i`` is encrypted to ``pgp_keys[i]``. The plaintext is the
  share's *lowercase hex* text (what ``gpg --decrypt`` prints, and what
  ``sys/unseal`` accepts), not its raw bytes.
* The result is one binary OpenPGP message per share; ``keys_base64`` holds
  its base64 and ``keys`` the hex of the same bytes.
* The root token is encrypted as its UTF-8 text; ``root_token`` becomes the
  base64 of that binary message.

``keybase:USER`` entries are refused: fetching them needs keybase.io, which a
server must not depend on (Vault's HTTP API does not fetch them either).

Encryption uses Sequoia-PGP (``pysequoia``) with its standard policy, which
also refuses keys bound only by SHA-1 signatures; Vault would accept those.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from pathlib import Path

import pysequoia
from pysequoia import Cert
from pysequoia.packet import PacketPile, Tag

from strongroom.errors import BadRequestError

KEYBASE_PREFIX = "keybase:"
SEAL_CONFIG_PREFIX = "invalid seal configuration: "
EXPORT_HINT = "send the binary public key base64-encoded, e.g. `gpg --export KEYID | base64 -w0`"

_ARMOR_PUBLIC = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"
_ARMOR_PRIVATE = b"-----BEGIN PGP PRIVATE KEY BLOCK-----"
_SECRET_TAGS = (Tag.SecretKey, Tag.SecretSubkey)


def _reason(exc: Exception) -> str:
    """The first line of a library error (RUST_BACKTRACE=1 appends a stack trace)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def decode_base64(text: str) -> bytes:
    """Standard base64 with padding; CR/LF are skipped like Go's ``StdEncoding`` does.

    Raises:
        ValueError: ``text`` is not valid base64.
    """
    try:
        return base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None


def parse_public_key(value: object, label: str, prefix: str = "") -> Cert:
    """Parse and check one API-supplied public key.

    Args:
        value: The field value (should be a base64 string).
        label: How to name the key in errors, e.g. ``"pgp_keys[1]"``.
        prefix: Prepended to every error message.

    Returns:
        The certificate, known to have a usable encryption key right now.

    Raises:
        BadRequestError: With a message saying what is wrong and what to send.
    """
    def bad(message: str) -> BadRequestError:
        return BadRequestError(prefix + message)

    if not isinstance(value, str):
        raise bad(f"{label} must be a string")
    text = value.strip()
    if not text:
        raise bad(f"{label} is empty")
    if text.lower().startswith(KEYBASE_PREFIX):
        raise bad(
            f"{label}: keybase keys ({text!r}) are not supported: this server does not "
            f"fetch keys from keybase.io; {EXPORT_HINT}"
        )
    try:
        data = decode_base64(text)
    except ValueError:
        raise bad(f"error decoding given PGP key: {label} is not valid base64; "
                  f"{EXPORT_HINT}") from None
    if not data:
        raise bad(f"{label} is empty")
    if data.lstrip().startswith(b"-----BEGIN PGP"):
        raise bad(f"error parsing given PGP key: {label} is ASCII-armored; {EXPORT_HINT}")
    try:
        tags = [packet.tag for packet in PacketPile.from_bytes(data)]
    except (RuntimeError, ValueError) as exc:
        raise bad(f"error parsing given PGP key: {label} is not an OpenPGP key: "
                  f"{_reason(exc)}") from None
    if any(tag in _SECRET_TAGS for tag in tags):
        raise bad(f"{label} contains secret key material: send only the public key "
                  "(gpg --export, not --export-secret-keys)")
    if not tags or tags[0] != Tag.PublicKey:
        raise bad(f"error parsing given PGP key: {label} is not an OpenPGP public key")
    if tags.count(Tag.PublicKey) > 1:
        raise bad(f"error parsing given PGP key: {label} holds more than one key; "
                  "send exactly one")
    try:
        cert = Cert.from_bytes(data)
    except (RuntimeError, ValueError) as exc:
        raise bad(f"error parsing given PGP key: {label}: {_reason(exc)}") from None
    try:
        # A trial run: whatever stops encryption later must fail here, before
        # anything is initialized.
        encrypt(b"", cert)
    except (RuntimeError, ValueError):
        raise bad(
            f"{label} (fingerprint {cert.fingerprint}) has no usable encryption key: it "
            "is expired, revoked or signing-only, or its binding signatures use SHA-1"
        ) from None
    return cert


def parse_share_keys(pgp_keys: object, shares: int) -> list[Cert]:
    """Check ``pgp_keys`` for an init of ``shares`` shares; ``[]`` when none are given.

    Raises:
        BadRequestError: Not a list of strings, the wrong count, or a bad key.
    """
    if pgp_keys is None:
        return []
    if not isinstance(pgp_keys, list):
        raise BadRequestError("'pgp_keys' must be a list of base64-encoded public keys")
    if not pgp_keys:
        return []
    if len(pgp_keys) != shares:
        raise BadRequestError(
            SEAL_CONFIG_PREFIX
            + "count mismatch between number of provided PGP keys and number of shares"
        )
    return [parse_public_key(key, f"pgp_keys[{i}]", SEAL_CONFIG_PREFIX)
            for i, key in enumerate(pgp_keys)]


def encrypt(plaintext: bytes, cert: Cert) -> bytes:
    """Encrypt to ``cert``, returning the binary (unarmored) OpenPGP message.

    Raises:
        RuntimeError: The certificate has no usable encryption key.
    """
    return pysequoia.encrypt(plaintext, [cert], armor=False)


def encrypt_shares(shares: Sequence[bytes | bytearray], certs: Sequence[Cert]) -> list[bytes]:
    """Encrypt each share's hex text to the matching certificate, as Vault does."""
    if len(shares) != len(certs):
        raise ValueError("one certificate per share is needed")
    return [encrypt(share.hex().encode(), cert) for share, cert in zip(shares, certs, strict=True)]


def read_key_file(path: str) -> str:
    """Read a public key file for ``operator init -pgp-keys``, as the vault CLI does.

    The file may hold an ASCII-armored public key block (exactly one key), the
    key's base64 text, or the binary key. A leading ``@`` on the path is
    dropped.

    Returns:
        The base64 of the binary key, ready for the API.

    Raises:
        ValueError: The file cannot be read, or holds a private or several keys.
    """
    if path.startswith("@"):
        path = path[1:]
    if not path:
        raise ValueError("empty path")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"open {path}: {exc.strerror or exc}") from None
    if _ARMOR_PRIVATE in data:
        raise ValueError(f"{path} holds a private key; export the public key instead")
    if _ARMOR_PUBLIC in data:
        try:
            certs = Cert.split_bytes(data)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"cannot parse {path}: {_reason(exc)}") from None
        if len(certs) != 1:
            raise ValueError(f"more than one key found in file {path}")
        return base64.b64encode(bytes(certs[0])).decode()
    try:
        text = data.decode("ascii").strip()
        if text and decode_base64(text):
            return text.replace("\r", "").replace("\n", "")
    except (UnicodeDecodeError, ValueError):
        pass
    return base64.b64encode(data).decode()
