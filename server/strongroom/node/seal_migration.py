"""Seal migration, Shamir to an auto-seal (PKCS#11) and back, as Vault does it.

Vault's procedure (docs: concepts/seal#seal-migration; code: vault/core.go
``unsealFragment``/``migrateSeal``): the configuration names the new seal and
keeps the old one marked ``disabled = "true"`` (Shamir to auto-seal: the new
``seal`` stanza is simply added; its stored configuration still says
"shamir"). While the stored seal type differs from the configured seal's, a
migration is pending: ``sys/seal-status`` says ``migration: true``, an unseal
without ``migrate`` is refused, and ``sys/unseal`` with ``migrate: true`` takes
the *old* seal's keys:

* Shamir to auto-seal: the old unseal key shares. They combine to the old root
  key, which opens the keyring and then becomes the recovery key (the old shares
  are the recovery shares, same count and threshold); a new root key is made,
  wrapped by the new seal, and the keyring is re-encrypted under it.
* auto-seal to Shamir: the recovery key shares. They are checked against the
  stored recovery key, the old seal opens the stored root key, and the recovery
  key becomes the new root key (the recovery shares are the new unseal shares);
  the keyring is re-encrypted under it and the auto-seal's entries go.

The migration itself runs on the active node: at once on a node without HA,
when it becomes active in a cluster (so standbys are unsealed with ``-migrate``
first and the old active steps down, as Vault documents). All its writes go in
one storage transaction where the backend has them (Consul, file, inmem), else in an
order whose every prefix can be resumed: a node stopped part-way opens with
whichever root key the stored keyring is under, after the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.barrier.barrier import KEYRING_PATH, AESGCMBarrier, InvalidRootKeyError
from strongroom.barrier.keyring import KEY_SIZE
from strongroom.barrier.secmem import random_key, wipe
from strongroom.errors import BadRequestError, StrongroomError
from strongroom.node import recovery
from strongroom.physical.base import Backend, Op, apply_ops
from strongroom.seal.base import (
    RECOVERY_CONFIG_PATH,
    SEAL_CONFIG_PATH,
    SEALED_ROOT_KEY_PATH,
    Seal,
    SealConfig,
    SealedRootKey,
)
from strongroom.seal.shamir_seal import SHAMIR, ShamirSeal

# Vault's messages (its unseal handler answers them with a 500).
NO_MIGRATION_SEAL = "can't perform a seal migration, no migration seal found"
MIGRATION_PENDING = "migrate option not provided and seal migration is pending"


class MigrationError(StrongroomError):
    """A refused or failed migration step; 500, as Vault's unseal handler answers."""


def _opens(barrier: AESGCMBarrier, key: bytearray) -> bool:
    """Whether ``key`` opens the stored keyring (the trial keyring is wiped)."""
    try:
        barrier.load_keyring(key).wipe()
    except InvalidRootKeyError:
        return False
    return True


def _stored_root_key(physical: Backend) -> SealedRootKey | None:
    raw = physical.get(SEALED_ROOT_KEY_PATH)
    return SealedRootKey.from_json(raw) if raw is not None else None


@dataclass(frozen=True)
class SealMigration:
    """A configured migration: from ``old`` (the disabled seal) to ``current``."""

    current: Seal
    old: Seal

    def pending(self, config: SealConfig | None) -> bool:
        """Whether storage still describes the old seal (Vault's ``!sealMigrated``)."""
        return config is not None and config.type != self.current.type

    def keys_config(self, physical: Backend, config: SealConfig) -> SealConfig:
        """The shares ``-migrate`` takes (``t``/``n``): the old unseal keys' (Shamir), or
        the recovery keys' (from an auto-seal)."""
        if not self.old.auto_unseal:
            return config
        found = recovery.load_config(physical)
        if found is None or found.secret_shares < 1:
            raise MigrationError("cannot migrate from an auto-seal without recovery keys")
        return found

    def recover(self, physical: Backend, barrier: AESGCMBarrier, parts: list[bytearray],
                config: SealConfig) -> tuple[bytearray, bytearray]:
        """From the operator's ``parts`` (the caller wipes them): the root key that opens
        the stored keyring now, and the combined key the migration keeps (both new
        bytearrays the caller wipes).

        Raises:
            BadRequestError: the shares are not the old seal's keys.
        """
        keys = self.keys_config(physical, config)
        if self.old.auto_unseal:
            combined = recovery.combine_shares(parts, keys.secret_threshold, "recovery key")
        else:
            combined = ShamirSeal().recover(parts, None, config)
        try:
            return self._root_key_for(physical, barrier, combined, config), combined
        except BaseException:
            wipe(combined)
            raise

    def _root_key_for(self, physical: Backend, barrier: AESGCMBarrier, combined: bytearray,
                      config: SealConfig) -> bytearray:
        if not self.old.auto_unseal:
            if _opens(barrier, combined):
                return bytearray(combined)
            # Resumed: a migration stopped after re-encrypting the keyring. The recovery
            # key it stored first must be these shares' key.
            if physical.get(recovery.RECOVERY_KEY_PATH) is None:
                raise InvalidRootKeyError("unseal failed, invalid key")
            recovery.verify(physical, self.current, combined)
            candidate = self._current_root_key(physical, config)
        else:
            recovery.verify(physical, self.old, combined)
            stored = _stored_root_key(physical)
            if stored is None:
                raise MigrationError("no stored root key for the migration seal")
            candidate = self.old.recover([], stored, config)
            if _opens(barrier, candidate):
                return candidate
            wipe(candidate)
            # Resumed: the keyring is already under the recovery key.
            candidate = bytearray(combined)
        if not _opens(barrier, candidate):
            wipe(candidate)
            raise InvalidRootKeyError("unseal failed, invalid key")
        return candidate

    def _current_root_key(self, physical: Backend, config: SealConfig) -> bytearray:
        stored = _stored_root_key(physical)
        if stored is None:
            raise InvalidRootKeyError("unseal failed, invalid key")
        return self.current.recover([], stored, config)

    def migrate(self, physical: Backend, barrier: AESGCMBarrier, combined: bytearray,
                config: SealConfig) -> bytearray:
        """Rewrite storage for the new seal; returns the new root key (the caller owns
        it). ``barrier`` is unsealed; ``combined`` stays the caller's to wipe.

        Raises:
            MigrationError: Shamir to Shamir, or auto-seal to auto-seal (not supported).
        """
        if self.old.auto_unseal == self.current.auto_unseal:
            kinds = "shamir to shamir" if not self.old.auto_unseal else "auto-seal to auto-seal"
            raise MigrationError(f"unhandled migration case ({kinds})")
        if self.current.auto_unseal:
            return self._to_auto(physical, barrier, combined, config)
        return self._to_shamir(physical, barrier, combined)

    def _to_auto(self, physical: Backend, barrier: AESGCMBarrier, combined: bytearray,
                 config: SealConfig) -> bytearray:
        new_config = SealConfig(type=self.current.type, secret_shares=1, secret_threshold=1)
        self.current.validate_config(new_config)
        recovery_config = SealConfig(type=recovery.RECOVERY_TYPE,
                                     secret_shares=config.secret_shares,
                                     secret_threshold=config.secret_threshold)
        new_root = random_key(KEY_SIZE)
        try:
            stored = self.current.protect(new_root, new_config).stored
            if stored is None:
                raise MigrationError(f"seal type {self.current.type} stored no root key")
            # In this order where there is no transaction: the new seal's entries (unused
            # while the seal config says shamir), then the keyring, then the config.
            ops: list[Op] = [("put", SEALED_ROOT_KEY_PATH, stored.to_json()),
                             *recovery.store_ops(self.current, combined, recovery_config),
                             ("put", KEYRING_PATH, barrier.keyring_blob(new_root,
                                                                       barrier.keyring)),
                             ("put", SEAL_CONFIG_PATH, new_config.to_json())]
            apply_ops(physical, ops)
        except BaseException:
            wipe(new_root)
            raise
        return new_root

    def _to_shamir(self, physical: Backend, barrier: AESGCMBarrier,
                   combined: bytearray) -> bytearray:
        keys = self.keys_config(physical, SealConfig(SHAMIR, 1, 1))
        new_config = SealConfig(type=SHAMIR, secret_shares=keys.secret_shares,
                                secret_threshold=keys.secret_threshold)
        self.current.validate_config(new_config)
        if len(combined) != KEY_SIZE:
            raise BadRequestError("recovery key has the wrong size for a root key")
        new_root = bytearray(combined)
        try:
            # The keyring first: until the config says shamir, a stop here resumes with
            # the recovery shares (recover() tries the recovery key itself).
            ops: list[Op] = [("put", KEYRING_PATH, barrier.keyring_blob(new_root,
                                                                       barrier.keyring)),
                             ("put", SEAL_CONFIG_PATH, new_config.to_json()),
                             ("delete", SEALED_ROOT_KEY_PATH, None),
                             ("delete", recovery.RECOVERY_KEY_PATH, None),
                             ("delete", RECOVERY_CONFIG_PATH, None)]
            apply_ops(physical, ops)
        except BaseException:
            wipe(new_root)
            raise
        return new_root
