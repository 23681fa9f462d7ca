"""Generating a new root token from a quorum of key holders (Vault's ``sys/generate-root``).

One attempt at a time per node, held by the coordinator (the owner process),
as OpenBao's ``vault/generate_root.go`` runs it:

* ``start`` opens an attempt with a one-time password (``otp``) or a PGP key
  (``pgp_key``); with neither, an OTP is generated and returned once, in the
  answer to that request (Vault 1.10+). The OTP has the length of a root token
  ("hvs." and 24 base62 characters: 28), because the token is XOR'ed with it.
* ``update`` takes one share (an unseal key share on a Shamir node, a recovery
  key share on an auto-sealed one) with the attempt's nonce; a share given
  twice is refused. At the threshold the shares are combined and checked by
  the caller (``authenticate``): a wrong set ends that round (progress back to
  0, same nonce), as Vault does. Once authenticated a root token is created
  (``generate``) and returned only encoded: XOR'ed with the OTP and base64
  (no padding), or encrypted to the PGP key (base64 of the binary message).
* ``cancel`` forgets the attempt and wipes the shares given.

Shares come through seal/progress.py's ``ShareCollector`` (nonce-less rounds:
the attempt keeps the nonce itself, since a failed round keeps it).
"""

from __future__ import annotations

import base64
import secrets
import string
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pysequoia import Cert

from strongroom.barrier.secmem import wipe, wipe_immutable, wipe_immutable_str
from strongroom.errors import BadRequestError
from strongroom.seal import pgp
from strongroom.seal.progress import ShareCollector, decode_share

# A root token is "hvs." plus 24 base62 characters (core/tokens.py): the OTP matches it.
TOKEN_LENGTH = 24
TOKEN_PREFIX_LENGTH = 4
OTP_LENGTH = TOKEN_LENGTH + TOKEN_PREFIX_LENGTH
_BASE62 = string.ascii_letters + string.digits

# Checks the combined shares (raises BadRequestError when they are not the node's keys);
# the caller wipes the shares.
Authenticator = Callable[[list[bytearray]], None]
# Creates the new root token and returns its id.
TokenMaker = Callable[[], str]


def generate_otp(length: int = OTP_LENGTH) -> str:
    """A fresh base62 OTP, by default of the root token's length (Vault's base62.Random)."""
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def encode_token(token: str, otp: bytearray) -> str:
    """The token XOR'ed with the OTP, base64 without padding (Vault's roottoken.EncodeToken).

    Raises:
        ValueError: the lengths differ.
    """
    raw = token.encode("ascii")
    try:
        if len(raw) != len(otp):
            raise ValueError("length of byte slices is not equivalent")
        mixed = bytearray(a ^ b for a, b in zip(raw, otp, strict=True))
    finally:
        wipe_immutable(raw)
    try:
        return base64.b64encode(mixed).decode("ascii").rstrip("=")
    finally:
        wipe(mixed)


def decode_token(encoded: str, otp: str) -> str:
    """The inverse of :func:`encode_token`, for ``operator generate-root -decode``.

    Raises:
        ValueError: not base64, or not of the OTP's length.
    """
    text = encoded.strip()
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        raise ValueError("error decoding base64'd token") from None
    key = otp.encode()
    if len(raw) != len(key):
        raise ValueError("length of byte slices is not equivalent")
    return bytes(a ^ b for a, b in zip(raw, key, strict=True)).decode("ascii", "replace")


def new_nonce() -> str:
    return str(uuid.uuid4())


@dataclass
class _Attempt:
    nonce: str
    otp: bytearray  # empty with a PGP key; wiped when the attempt ends
    pgp_cert: Cert | None
    pgp_fingerprint: str


class RootGeneration:
    """The generate-root state machine of one node; thread-safe."""

    def __init__(self, nonce_factory: Callable[[], str] = new_nonce) -> None:
        self._new_nonce = nonce_factory
        self._lock = threading.Lock()
        self._attempt: _Attempt | None = None
        self._shares = ShareCollector()

    def status(self, required: int, otp: str = "") -> dict[str, Any]:
        """Vault's ``GET sys/generate-root/attempt`` body; ``otp`` only right after start."""
        with self._lock:
            attempt = self._attempt
            return {
                "nonce": attempt.nonce if attempt else "",
                "started": attempt is not None,
                "progress": self._shares.progress,
                "required": required,
                "complete": False,
                "encoded_token": "",
                "encoded_root_token": "",
                "pgp_fingerprint": attempt.pgp_fingerprint if attempt else "",
                "otp": otp,
                "otp_length": OTP_LENGTH,
            }

    def start(self, otp: str | None, pgp_key: str | None, required: int) -> dict[str, Any]:
        """Open an attempt; Vault's checks and messages (all 400s).

        An OTP wins over a PGP key when both are given, as in Vault.
        """
        generated = ""
        if not otp and not pgp_key:
            generated = otp = generate_otp()
        cert: Cert | None = None
        fingerprint = ""
        if otp:
            # Go's len: bytes, not characters (a non-ASCII OTP is Vault's 400 too).
            if len(otp.encode()) != OTP_LENGTH:
                raise BadRequestError("OTP string has incorrect length")
        else:
            cert = pgp.parse_public_key(pgp_key, "pgp_key", "error parsing PGP key: ")
            fingerprint = str(cert.fingerprint).lower()
        with self._lock:
            if self._attempt is not None:
                raise BadRequestError("root generation already in progress")
            self._shares.reset()
            self._attempt = _Attempt(
                nonce=self._new_nonce(),
                otp=bytearray(otp.encode()) if otp else bytearray(),
                pgp_cert=cert, pgp_fingerprint=fingerprint)
        return self.status(required, generated)

    def cancel(self) -> None:
        """Forget the attempt (none is fine) and wipe what it held."""
        with self._lock:
            self._end()

    def _end(self) -> None:
        if self._attempt is not None:
            wipe(self._attempt.otp)
        self._attempt = None
        self._shares.reset()

    def update(self, key: str, nonce: str, required: int, authenticate: Authenticator,
               generate: TokenMaker) -> dict[str, Any]:
        """Give one share; at ``required`` distinct shares authenticate and make the token.

        Raises:
            BadRequestError: no attempt, wrong nonce, a share given twice, a bad share,
                or shares that are not this node's keys ("root generation aborted: ...").
        """
        raw = decode_share(key)
        with self._lock:
            attempt = self._attempt
            if attempt is None:
                wipe(raw)
                raise BadRequestError("no root generation in progress")
            if nonce != attempt.nonce:
                wipe(raw)
                raise BadRequestError("incorrect nonce supplied; nonce for this root "
                                      f'generation operation is "{attempt.nonce}"')
            before = self._shares.progress
            parts = self._shares.add(raw, required)
            if parts is None:
                if self._shares.progress == before:
                    raise BadRequestError(
                        "given key has already been provided during this generation operation")
                return self._progress_answer(nonce, self._shares.progress, required)
            try:
                try:
                    authenticate(parts)
                except BadRequestError as exc:
                    raise BadRequestError(f"root generation aborted: {exc.message}") from None
            finally:
                for part in parts:
                    wipe(part)
            encoded = self._encoded(attempt, generate())
            self._end()
        answer = self._progress_answer(nonce, required, required)
        answer.update(complete=True, encoded_token=encoded, encoded_root_token=encoded)
        return answer

    @staticmethod
    def _encoded(attempt: _Attempt, token: str) -> str:
        """The token encoded for the requester; its text is zeroed afterwards."""
        try:
            if attempt.pgp_cert is not None:
                return base64.b64encode(pgp.encrypt(token.encode(), attempt.pgp_cert)).decode()
            return encode_token(token, attempt.otp)
        finally:
            wipe_immutable_str(token)

    def _progress_answer(self, nonce: str, progress: int, required: int) -> dict[str, Any]:
        attempt = self._attempt
        return {
            "nonce": nonce,
            "started": True,
            "progress": progress,
            "required": required,
            "complete": False,
            "encoded_token": "",
            "encoded_root_token": "",
            "pgp_fingerprint": attempt.pgp_fingerprint if attempt else "",
            "otp": "",
            "otp_length": 0,
        }
