"""AES-256-GCM barrier over a physical backend, with a termed keyring.

The barrier satisfies the same Backend interface as physical storage, so the
layers above read and write plaintext while the backend only ever holds
ciphertext. It holds key material in memory only (in a keyring it owns), and wipes it on seal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.barrier.counter import EncryptionCounter
from strongroom.barrier.crypto import (
    DecryptError,
    open_value,
    open_value_into,
    read_term,
    seal_value,
)
from strongroom.barrier.keyring import Keyring
from strongroom.barrier.secmem import wipe
from strongroom.errors import BadRequestError, CorruptEntryError, SealedError
from strongroom.physical.base import Backend, Op, apply_ops, list_page

KEYRING_PATH = "core/keyring"
_ROOT_TERM = 0  # the keyring entry is sealed with the root key under this pseudo-term


class InvalidRootKeyError(BadRequestError):
    """The root key reconstructed from the seal does not open the keyring."""


class AESGCMBarrier:
    """Encrypts every entry with the active term; decrypts with whichever term wrote it."""

    def __init__(
        self,
        physical: Backend,
        on_unknown_term: Callable[[], None] | None = None,
    ) -> None:
        self._physical = physical
        self._keyring: Keyring | None = None
        self._lock = threading.Lock()
        # A worker whose keyring lags behind a rotation asks for a fresh one once.
        self._on_unknown_term = on_unknown_term

    # -- keyring lifecycle -------------------------------------------------

    @property
    def sealed(self) -> bool:
        ring = self._keyring
        # A keyring wiped by another thread (a worker told of a seal) seals us at once.
        return ring is None or ring.wiped

    @property
    def keyring(self) -> Keyring:
        ring = self._keyring
        if ring is None or ring.wiped:
            raise SealedError()
        return ring

    def initialized(self) -> bool:
        return self._physical.get(KEYRING_PATH) is not None

    def persist_keyring(self, root_key: bytearray, keyring: Keyring) -> None:
        """Store the keyring encrypted under the root key."""
        self._physical.put(KEYRING_PATH, self.keyring_blob(root_key, keyring))

    @staticmethod
    def keyring_blob(root_key: bytearray, keyring: Keyring) -> bytes:
        """The keyring encrypted under ``root_key``, as stored at ``KEYRING_PATH`` (for a
        caller writing it in one transaction with other entries: seal migration)."""
        plain = keyring.to_json()
        try:
            return seal_value(AESGCM(root_key), _ROOT_TERM, KEYRING_PATH, plain)
        finally:
            wipe(plain)

    def load_keyring(
        self, root_key: bytes | bytearray, counter: EncryptionCounter | None = None,
    ) -> Keyring:
        """Open the stored keyring with a candidate root key; the caller owns the result.

        ``counter`` is the node's encryption count, which the keyring carries.
        """
        blob = self._physical.get(KEYRING_PATH)
        if blob is None:
            raise SealedError("Vault is not initialized")
        try:
            plain = open_value_into(AESGCM(root_key), KEYRING_PATH, blob)
        except (DecryptError, ValueError):
            raise InvalidRootKeyError("unseal failed, invalid key") from None
        try:
            return Keyring.from_json(plain, counter)
        except (ValueError, KeyError, TypeError):
            raise CorruptEntryError(KEYRING_PATH, "keyring does not parse") from None
        finally:
            wipe(plain)

    def install(self, keyring: Keyring) -> None:
        """Unseal this barrier with an opened keyring, taking ownership of it.

        The keyring is wiped when another replaces it or the barrier seals, so a
        caller that needs the keys elsewhere installs a ``copy()``.
        """
        with self._lock:
            old, self._keyring = self._keyring, keyring
        if old is not None and old is not keyring:
            old.wipe()

    def seal(self) -> None:
        with self._lock:
            old, self._keyring = self._keyring, None
        if old is not None:
            old.wipe()

    # -- Backend interface -------------------------------------------------

    def get(self, key: str) -> bytes | None:
        blob = self._physical.get(key)
        if blob is None:
            return None
        try:
            term = read_term(blob)
        except DecryptError:
            raise CorruptEntryError(key, "not a barrier entry") from None
        aead = self._aead_for(term)
        if aead is None:
            raise CorruptEntryError(key, f"unknown key term {term}")
        try:
            return open_value(aead, key, blob)
        except DecryptError:
            raise CorruptEntryError(key, "authentication failed") from None

    def put(self, key: str, value: bytes) -> None:
        ring = self.keyring
        aead = ring.aead(ring.active_term)
        if aead is None:
            raise SealedError()
        blob = seal_value(aead, ring.active_term, key, value)
        ring.count_encryptions()
        self._physical.put(key, blob)

    def transaction(self, ops: Sequence[Op]) -> None:
        """Encrypt every put, then hand the whole change to the physical backend at once."""
        ring = self.keyring
        aead = ring.aead(ring.active_term)
        if aead is None:
            raise SealedError()
        sealed: list[Op] = []
        for verb, key, value in ops:
            if verb == "put":
                assert value is not None
                sealed.append((verb, key, seal_value(aead, ring.active_term, key, value)))
            else:
                sealed.append((verb, key, None))
        ring.count_encryptions(sum(1 for verb, _, _ in ops if verb == "put"))
        apply_ops(self._physical, sealed)

    def delete(self, key: str) -> None:
        self.keyring  # noqa: B018 - raises SealedError when sealed
        self._physical.delete(key)

    def list_page(self, prefix: str, after: str = "", limit: int = 0) -> list[str]:
        self.keyring  # noqa: B018 - raises SealedError when sealed
        return list_page(self._physical, prefix, after, limit)

    def list(self, prefix: str) -> list[str]:
        self.keyring  # noqa: B018 - raises SealedError when sealed
        return self._physical.list(prefix)

    def _aead_for(self, term: int) -> AESGCM | None:
        aead = self.keyring.aead(term)
        if aead is None:
            self.keyring  # noqa: B018 - wiped meanwhile: sealed, not an unknown term
            if self._on_unknown_term is not None:
                self._on_unknown_term()
                aead = self.keyring.aead(term)
        return aead
