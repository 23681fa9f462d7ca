"""The coordinator's seal-migration steps (thin: the storage changes are
node/seal_migration.py).

A mixin of :class:`~strongroom.node.coordinator.LocalCoordinator`, kept apart so that
module stays small. The combined old-seal key given with ``unseal -migrate`` waits in
``_migration_key`` (wiped on seal) until this node is active and migrates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from strongroom.barrier.barrier import AESGCMBarrier
from strongroom.barrier.secmem import wipe
from strongroom.ha.manager import HAManager
from strongroom.ha.state import HAStatus
from strongroom.node.seal_migration import SealMigration
from strongroom.physical.base import Backend
from strongroom.seal.base import Seal, SealConfig
from strongroom.seal.shamir_seal import SHAMIR, ShamirSeal

log = logging.getLogger(__name__)


def mismatch(stored: str, configured: str) -> str:
    """Vault's refusal of a configured seal that storage does not describe, with no
    disabled seal to migrate from."""
    target = "Shamir" if configured == SHAMIR else f'"{configured}"'
    return f'cannot seal migrate from "{stored}" to {target}, no disabled seal in configuration'


class MigrationOperations:
    """Seal migration on unseal (``migrate``) and on becoming active, for the coordinator."""

    # Set by LocalCoordinator.__init__.
    _physical: Backend
    _seal: Seal
    _barrier: AESGCMBarrier
    _root_key: bytearray | None
    _ha_factory: Callable[..., HAManager] | None
    _ha_status: HAStatus
    _migration: SealMigration | None
    _migrating: SealMigration | None
    _migration_key: bytearray | None

    def _seal_config(self) -> SealConfig | None:
        raise NotImplementedError

    def _open_root_key(self, root_key: bytearray) -> None:
        raise NotImplementedError

    def _seal_on_error(self) -> None:
        raise NotImplementedError

    def _changed(self) -> None:
        raise NotImplementedError

    def _migration_for(self, config: SealConfig | None) -> SealMigration | None:
        """The seal migration storage and configuration call for, if one is pending
        (Vault's adjustForSealMigration): the configured one (its disabled seal), or from
        Shamir when an auto-seal is configured over a Shamir node with no disabled seal
        (Vault's way: just add the new stanza)."""
        migration = self._migration
        if (migration is None and config is not None and config.type == SHAMIR
                and self._seal.auto_unseal):
            migration = SealMigration(self._seal, ShamirSeal())
        return migration if migration is not None and migration.pending(config) else None

    def _open_migrating(self, parts: list[bytearray], config: SealConfig,
                        migration: SealMigration) -> None:
        """Open with the old seal's keys; migrate now (no HA) or once active (HA)."""
        root_key, combined = migration.recover(self._physical, self._barrier, parts, config)
        wipe(self._migration_key)
        self._migration_key = combined
        self._migrating = migration
        try:
            self._open_root_key(root_key)
            if self._ha_factory is None:
                self._finish_migration()
        except BaseException:
            wipe(self._migration_key)
            self._migration_key = None
            raise

    def _finish_migration(self) -> None:
        """Migrate storage to the new seal, on the active node (lock held). A failure
        seals the node (Vault does the same) and is raised."""
        config = self._seal_config()
        migration = self._migrating
        if (migration is None or self._migration_key is None or self._barrier.sealed
                or (self._ha_factory is not None and not self._ha_status.active)):
            return
        if not migration.pending(config):
            wipe(self._migration_key)
            self._migration_key = None
            return
        assert config is not None
        log.info("event=seal_migration_started from=%s to=%s", config.type, self._seal.type)
        try:
            new_root = migration.migrate(self._physical, self._barrier,
                                         self._migration_key, config)
        except Exception as exc:
            log.error("event=seal_migration_failed error=%s", exc)
            self._seal_on_error()
            raise
        wipe(self._root_key)
        self._root_key = new_root
        wipe(self._migration_key)
        self._migration_key = None
        log.info("event=seal_migration_complete seal=%s", self._seal.type)
        self._changed()
