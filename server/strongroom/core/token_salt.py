"""The token store's secrets: its HMAC salt and the batch-token key derived from it.

Whoever holds the salt computes the storage key of any token it is shown, and
whoever holds the batch key forges batch tokens that stay valid across seals.
So both live only in bytearrays owned by one :class:`TokenSecrets`, which the
token store wipes when the node seals (in every worker, see Core), and every
use checks afterwards that no wipe raced with it: a result computed from a key
being zeroed is never returned (SealedError instead, which is what the node is).
HMAC and AES-GCM contexts are made per call from the bytearray; OpenSSL
cleanses them when they are freed, so no key copy outlives the call.
"""

from __future__ import annotations

import hmac
import sys
import threading
from typing import Any

from strongroom.barrier.secmem import random_key, wipe, wipe_immutable
from strongroom.core.token_batch import open_batch, seal_batch
from strongroom.errors import SealedError
from strongroom.physical.base import Backend

SALT_KEY = "salt"
SALT_SIZE = 32
_BATCH_KEY_INFO = b"batch-token-key"


def _sole_copy(raw: bytes) -> bytearray:
    """``raw`` copied into a bytearray, and ``raw`` zeroed if nobody else can see it.

    The value comes from the barrier, freshly decrypted: a ``bytes`` nobody else
    holds. Zeroing is skipped if something (a cache above the barrier, a test's
    in-memory backend) also references it, since that would corrupt what it keeps.
    """
    out = bytearray(raw)
    # Two references: our parameter and getrefcount's own argument.
    if sys.getrefcount(raw) <= 3:
        wipe_immutable(raw)
    return out


class TokenSecrets:
    """The salt and the derived batch key; unusable (SealedError) once wiped."""

    def __init__(self, salt: bytearray) -> None:
        self._salt = salt
        derived = hmac.digest(salt, _BATCH_KEY_INFO, "sha256")
        self._batch_key = bytearray(derived)
        wipe_immutable(derived)
        self._wiped = False

    @property
    def wiped(self) -> bool:
        return self._wiped

    def _check(self) -> None:
        # Wipe sets the flag before zeroing: a result computed while the key was
        # being zeroed is always caught here, after the computation.
        if self._wiped:
            raise SealedError()

    def salted(self, value: str) -> str:
        """HMAC-SHA256 of ``value`` under the salt (hex)."""
        raw = value.encode()  # a token in clear: this copy is ours alone, zeroed next
        try:
            digest = hmac.digest(self._salt, raw, "sha256")
        finally:
            wipe_immutable(raw)
        self._check()
        return digest.hex()

    def seal_batch(self, entry: dict[str, Any]) -> str:
        token = seal_batch(self._batch_key, entry)
        self._check()
        return token

    def open_batch(self, token: str) -> dict[str, Any] | None:
        doc = open_batch(self._batch_key, token)
        self._check()
        return doc

    def wipe(self) -> None:
        self._wiped = True
        wipe(self._salt)
        wipe(self._batch_key)


class SaltHolder:
    """Loads the salt once (creating it on a fresh store) and forgets it on seal."""

    def __init__(self, storage: Backend) -> None:
        self._storage = storage
        self._current: TokenSecrets | None = None
        # Serialises loads (one salt even if two threads start together); held
        # across storage I/O, so forget() does not take it: a seal seen during a
        # load (the barrier asking the coordinator) must not wait for that load.
        self._load_lock = threading.Lock()
        self._lock = threading.Lock()
        self._epoch = 0

    def get(self) -> TokenSecrets:
        current = self._current
        if current is not None:
            return current
        with self._load_lock:
            with self._lock:
                if self._current is not None:
                    return self._current
                epoch = self._epoch
            loaded = TokenSecrets(self._load())
            with self._lock:
                if self._epoch != epoch:
                    # Forgotten while we read it: the node sealed under us.
                    loaded.wipe()
                    raise SealedError()
                self._current = loaded
            return loaded

    def _load(self) -> bytearray:
        raw = self._storage.get(SALT_KEY)
        if raw is not None:
            return _sole_copy(raw)
        salt = random_key(SALT_SIZE)
        raw = bytes(salt)  # the storage interface takes bytes; this copy is zeroed next
        try:
            self._storage.put(SALT_KEY, raw)
        except BaseException:
            wipe(salt)
            raise
        finally:
            if sys.getrefcount(raw) <= 2:
                wipe_immutable(raw)
        return salt

    def forget(self) -> None:
        """Wipe the salt and the batch key; the next use reloads them (if unsealed)."""
        with self._lock:
            self._epoch += 1
            current, self._current = self._current, None
        if current is not None:
            current.wipe()
