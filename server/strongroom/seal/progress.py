"""Collecting key shares from operators, one request at a time, until a threshold.

One collector serves every operation that needs a quorum of key holders: unseal
now, rekey and generate-root next (issue 13), as Vault runs them: a round has a
nonce (a UUID made on its first share, or when the round is started explicitly),
a share given twice in a round is ignored, ``reset`` abandons the round, and the
shares are handed over once ``threshold`` distinct ones are in.

Shares are ``bytearray`` objects the collector owns from ``add`` on and wipes when
the round is reset or abandoned; the list returned at the threshold is the
caller's to wipe (barrier/secmem.py says why).
"""

from __future__ import annotations

import hmac
import threading
import uuid
from collections.abc import Callable

from strongroom.barrier.keyring import KEY_SIZE
from strongroom.barrier.secmem import b64decode_into, hexdecode_into, wipe, wipe_immutable
from strongroom.errors import BadRequestError

MIN_KEY_SIZE = 16
MAX_KEY_SIZE = KEY_SIZE + 1  # a Shamir share carries one extra byte: its x-coordinate


def decode_share(key: str) -> bytearray:
    """A key share arrives hex-encoded or base64-encoded, as Vault accepts both.

    Decoded into a bytearray (wiped once combined), never through bytes.fromhex
    or base64.b64decode, whose immutable results would outlive a seal in memory.
    """
    text = key.strip().encode("ascii", "replace")
    try:
        try:
            raw = hexdecode_into(text)
        except ValueError:
            try:
                raw = b64decode_into(text)
            except ValueError:
                raise BadRequestError("'key' must be a valid hex or base64 string") from None
    finally:
        wipe_immutable(text)
    if len(raw) < MIN_KEY_SIZE or len(raw) > MAX_KEY_SIZE:
        wipe(raw)
        if len(raw) < MIN_KEY_SIZE:
            raise BadRequestError(
                f"invalid key: key is shorter than minimum {MIN_KEY_SIZE} bytes")
        raise BadRequestError(f"invalid key: key is longer than maximum {MAX_KEY_SIZE} bytes")
    return raw


def _new_nonce() -> str:
    return str(uuid.uuid4())


class ShareCollector:
    """One round of share collection; thread-safe."""

    def __init__(self, nonce_factory: Callable[[], str] = _new_nonce) -> None:
        self._new_nonce = nonce_factory
        self._lock = threading.Lock()
        self._parts: list[bytearray] = []
        self._nonce = ""
        self._threshold = 0

    @property
    def progress(self) -> int:
        """Distinct shares given in this round."""
        return len(self._parts)

    @property
    def nonce(self) -> str:
        """The round's nonce; "" when no round is under way."""
        return self._nonce

    @property
    def threshold(self) -> int:
        """The threshold of the last share given (0 before any)."""
        return self._threshold

    def begin(self) -> str:
        """Start a round explicitly (rekey/generate-root ``init``); returns its nonce."""
        with self._lock:
            self._clear()
            self._nonce = self._new_nonce()
            return self._nonce

    def add(self, share: bytearray, threshold: int) -> list[bytearray] | None:
        """Take ``share`` (the collector owns it from now on) towards ``threshold``.

        Returns:
            None while the threshold is not reached (a duplicate is ignored: wiped,
            progress unchanged); at the threshold the round's shares, which the
            caller wipes, and the collector is empty again.
        """
        with self._lock:
            # Constant-time: the comparison must not tell how much of a guess matched.
            if any(hmac.compare_digest(share, part) for part in self._parts):
                wipe(share)
                return None
            self._parts.append(share)
            self._threshold = threshold
            if not self._nonce:
                self._nonce = self._new_nonce()
            if len(self._parts) < threshold:
                return None
            parts, self._parts, self._nonce = self._parts, [], ""
            return parts

    def reset(self) -> None:
        """Abandon the round: wipe every share given, forget the nonce."""
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        for part in self._parts:
            wipe(part)
        self._parts = []
        self._nonce = ""
        self._threshold = 0
