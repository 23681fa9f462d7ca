"""A software auto-seal: the shape of issue 13's PKCS#11 seal, with AES-GCM keys in memory.

It implements seal/base.py's ``Seal`` plus the auto-seal contract's ``wrap``/``unwrap``
(one wrap per "partition", any reachable one unwraps), so recovery keys, rekey and
root-key rotation can be tested without an HSM; the integration tests use real
SoftHSM tokens (tests/support/softhsm.py). ``down`` makes a partition unreachable.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.errors import BadRequestError
from strongroom.seal.base import (
    Protected,
    SealConfig,
    SealedRootKey,
    SealHealth,
    WrappedRootKey,
)


class SoftAutoSeal:
    """An auto-seal whose keys are software AES-256 keys, one per named partition."""

    def __init__(self, partitions: Sequence[str] = ("soft-a", "soft-b"),
                 seal_type: str = "pkcs11") -> None:
        self.keys = {name: AESGCM.generate_key(256) for name in partitions}
        self.down: set[str] = set()
        self._type = seal_type

    @property
    def type(self) -> str:
        return self._type

    @property
    def auto_unseal(self) -> bool:
        return True

    def validate_config(self, config: SealConfig) -> None:
        if config.secret_shares != 1 or config.secret_threshold != 1:
            raise BadRequestError("invalid seal configuration: an auto-seal stores one key")

    def wrap(self, plaintext: bytes | bytearray) -> SealedRootKey:
        wrapped = []
        for name, key in self.keys.items():
            if name in self.down:
                continue
            iv = os.urandom(12)
            wrapped.append(WrappedRootKey(f"{name}/root", "CKM_AES_GCM",
                                          AESGCM(key).encrypt(iv, bytes(plaintext), None), iv))
        if not wrapped:
            raise BadRequestError("no seal partition available")
        return SealedRootKey(self._type, tuple(wrapped))

    def unwrap(self, stored: SealedRootKey) -> bytearray:
        for entry in stored.wrapped:
            name = entry.key_id.split("/", 1)[0]
            if name in self.down or name not in self.keys:
                continue
            try:
                return bytearray(AESGCM(self.keys[name]).decrypt(entry.iv, entry.ciphertext,
                                                                 None))
            except InvalidTag:
                continue
        raise BadRequestError("no seal partition could unwrap the key")

    def protect(self, root_key: bytearray, config: SealConfig) -> Protected:
        return Protected(shares=[], stored=self.wrap(root_key))

    def recover(self, shares: Sequence[bytearray], stored: SealedRootKey | None,
                config: SealConfig) -> bytearray:
        if stored is None:
            raise BadRequestError("no stored root key")
        return self.unwrap(stored)

    def complete(self, stored: SealedRootKey, plaintext: bytes | bytearray
                 ) -> SealedRootKey | None:
        have = {w.key_id.split("/", 1)[0] for w in stored.wrapped}
        missing = [n for n in self.keys if n not in have and n not in self.down]
        if not missing:
            return None
        extra = [w for w in self.wrap(plaintext).wrapped
                 if w.key_id.split("/", 1)[0] in missing]
        return SealedRootKey(stored.seal_type, (*stored.wrapped, *extra))

    def check(self) -> None:
        pass

    def health(self) -> SealHealth:
        lost = tuple(sorted(self.down))
        return SealHealth(degraded=bool(lost),
                          reasons=tuple(f"seal partition {n!r} unavailable" for n in lost))
