"""The seal state machine of one node: init, unseal progress, seal, key rotation.

Exactly one coordinator exists per node. With several gunicorn workers it
lives in the master process and workers reach it over a Unix socket
(node/rpc.py); in a single process it is called directly. It is the only
holder of the root key; workers receive the keyring and nothing else.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pysequoia import Cert

from strongroom import BUILD_DATE, __version__
from strongroom.barrier.barrier import AESGCMBarrier, InvalidRootKeyError
from strongroom.barrier.counter import EncryptionCounter
from strongroom.barrier.keyring import KEY_SIZE, Keyring
from strongroom.barrier.secmem import b64_text, random_key, wipe
from strongroom.errors import (
    BadRequestError,
    NotInitializedError,
    SealedError,
    StrongroomError,
)
from strongroom.ha.manager import HAManager
from strongroom.ha.state import HAStatus
from strongroom.node import encryptions, recovery
from strongroom.node.generate_root import RootGeneration
from strongroom.node.key_ops import KeyCoordinator, KeyOperations
from strongroom.node.migration_ops import MigrationOperations, mismatch
from strongroom.node.rekey import Rekeyer
from strongroom.node.root_gen_ops import RootGenCoordinator, RootGenOperations, RootTokenMaker
from strongroom.node.root_key import NodeKeys, complete_all_wraps, open_previous
from strongroom.node.seal_migration import (
    MIGRATION_PENDING,
    NO_MIGRATION_SEAL,
    MigrationError,
    SealMigration,
)
from strongroom.node.shared import SharedCounters, Slot
from strongroom.physical.base import Backend, apply_ops
from strongroom.seal import pgp
from strongroom.seal.base import (
    SEAL_CONFIG_PATH,
    SEALED_ROOT_KEY_PATH,
    Protected,
    Seal,
    SealConfig,
    SealedRootKey,
    is_auto_seal,
)
from strongroom.seal.health import backend_status, complete_wraps
from strongroom.seal.progress import ShareCollector, decode_share
from strongroom.seal.shamir_seal import ShamirSeal

log = logging.getLogger(__name__)
CLUSTER_INFO_PATH = "core/cluster/info"

Clock = Callable[[], datetime]
# Builds the node's HA manager around the coordinator's (unsealed) barrier.
HAFactory = Callable[[Backend, Callable[[HAStatus], None]], HAManager]
# Called once at init with the (temporarily unsealed) barrier; creates the root
# token and the initial mount table, returns the root token id.
Bootstrapper = Callable[[Backend, str | None], str]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NodeSnapshot:
    """What a worker needs to serve: the seal state and, when unsealed, the keyring."""

    generation: int
    initialized: bool
    sealed: bool
    keyring: Keyring | None
    cluster_name: str = ""
    cluster_id: str = ""
    ha: HAStatus = HAStatus()


class SealCoordinator(KeyCoordinator, RootGenCoordinator, Protocol):
    def generation(self) -> int: ...

    def snapshot(self) -> NodeSnapshot: ...

    def seal_status(self) -> dict[str, Any]: ...

    def seal_backend_status(self) -> dict[str, Any]: ...

    def initialize(
        self, shares: int, threshold: int, root_token_id: str | None = None, *,
        pgp_keys: list[str] | None = None, root_token_pgp_key: str | None = None,
        recovery_shares: int = 0, recovery_threshold: int = 0,
        recovery_pgp_keys: list[str] | None = None,
    ) -> dict[str, Any]: ...

    def unseal(self, key: str | None, reset: bool = False,
               migrate: bool = False) -> dict[str, Any]: ...

    def seal(self) -> None: ...

    def rotate(self) -> None: ...

    def step_down(self) -> None: ...

    def ha_lost(self) -> None: ...


class LocalCoordinator(KeyOperations, RootGenOperations, MigrationOperations):
    """In-process seal state machine; thread-safe (rekey and root-key rotation:
    node/key_ops.py; generate-root: node/root_gen_ops.py; seal migration:
    node/migration_ops.py)."""

    def __init__(
        self,
        physical: Backend,
        storage_type: str,
        bootstrap: Bootstrapper,
        clock: Clock = utcnow,
        counters: SharedCounters | None = None,
        ha_factory: HAFactory | None = None,
        *,
        seal: Seal | None = None,
        encryption_counter: EncryptionCounter | None = None,
        max_encryptions: int = encryptions.ABSOLUTE_OPERATION_MAXIMUM,
        root_token_maker: RootTokenMaker | None = None,
        old_seal: Seal | None = None,
    ) -> None:
        self._physical = physical
        self._seal: Seal = seal or ShamirSeal()
        # Shared with every worker (node/rpc.py sends its descriptor); see barrier/counter.py.
        self._encryptions = encryption_counter or EncryptionCounter()
        self._max_encryptions = max_encryptions
        self._known_initialized = False
        self._barrier = AESGCMBarrier(physical)
        self._storage_type = storage_type
        self._bootstrap = bootstrap
        self._clock = clock
        self._counters = counters or SharedCounters()
        self._lock = threading.RLock()
        # Wiped (zeroed in place) on seal, as the collector's shares; see barrier/secmem.py.
        self._root_key: bytearray | None = None
        self._progress = ShareCollector()
        self._cluster: tuple[str, str] = ("", "")
        self._ha_factory = ha_factory
        self._ha: HAManager | None = None
        # Makes "is it the current manager?" and the write of its status one atomic step.
        self._ha_publish_lock = threading.Lock()
        self._ha_status = HAStatus(enabled=ha_factory is not None)
        self._listeners: list[Callable[[], None]] = []
        self._keys = NodeKeys(physical, self._seal, self._barrier, self._encryptions,
                              lambda: self._root_key, self._set_root_key)
        self._rekey = Rekeyer(self._keys)
        # sys/seal sealed this node: the auto-unseal retry job leaves it sealed (Vault).
        self._operator_sealed = False
        self._root_gen = RootGeneration()
        self._root_token_maker = root_token_maker
        # Seal migration (node/seal_migration.py): ``old_seal`` is the configuration's
        # disabled seal; the combined key given with -migrate waits here (wiped on seal)
        # until this node is active and migrates.
        self._migration = (SealMigration(self._seal, old_seal) if old_seal is not None
                           else None)
        self._migrating: SealMigration | None = None
        self._migration_logged = False
        self._migration_key: bytearray | None = None

    # -- reading ------------------------------------------------------------

    def generation(self) -> int:
        return self._counters.get(Slot.SEAL)

    def seal_state(self) -> tuple[int, bool]:
        """The seal generation and whether the node is sealed, read together."""
        with self._lock:
            return self.generation(), self._barrier.sealed

    def ha_status(self) -> HAStatus:
        """This node's HA status (the owner's background work runs only when active)."""
        return self._ha_status

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from the changing thread) after every seal-state change."""
        self._listeners.append(listener)

    def encryption_counter(self) -> EncryptionCounter:
        """The node-wide encryption count, which workers attach to (node/rpc.py)."""
        return self._encryptions

    def _seal_config(self) -> SealConfig | None:
        raw = self._physical.get(SEAL_CONFIG_PATH)
        return SealConfig.from_json(raw) if raw is not None else None

    def _initialized(self) -> bool:
        """Initialized stays initialized: read storage only until it is (a node cut off
        from its storage must still describe itself, e.g. answer sys/health)."""
        if not self._known_initialized:
            self._known_initialized = self._seal_config() is not None
        return self._known_initialized

    def snapshot(self) -> NodeSnapshot:
        with self._lock:
            sealed = self._barrier.sealed
            return NodeSnapshot(
                generation=self.generation(),
                initialized=self._initialized(),
                sealed=sealed,
                # A copy the caller owns (installs into its barrier, or wipes once sent).
                keyring=None if sealed else self._barrier.keyring.copy(),
                cluster_name=self._cluster[0],
                cluster_id=self._cluster[1],
                ha=self._ha_status,
            )

    def seal_status(self) -> dict[str, Any]:
        with self._lock:
            config = self._seal_config()
            # With an auto-seal Vault reports the recovery configuration's t and n.
            shown = (recovery.load_config(self._physical)
                     if config is not None and self._seal.auto_unseal else config)
            status: dict[str, Any] = {
                "type": config.type if config else self._seal.type,
                "initialized": config is not None,
                "sealed": self._barrier.sealed,
                "t": shown.secret_threshold if shown else 0,
                "n": shown.secret_shares if shown else 0,
                "progress": self._progress.progress,
                "nonce": self._progress.nonce,
                "version": __version__,
                "build_date": BUILD_DATE,
                "migration": False,
                "recovery_seal": self._seal.auto_unseal,
                "storage_type": self._storage_type,
            }
            if self._seal.auto_unseal:
                status["recovery_seal_type"] = recovery.RECOVERY_TYPE
            migration = self._migration_for(config)
            if migration is not None:
                assert config is not None
                try:
                    keys = migration.keys_config(self._physical, config)
                    status["t"], status["n"] = keys.secret_threshold, keys.secret_shares
                except MigrationError:
                    pass
                # Vault: the configured seal's type, and the keys -migrate takes.
                status.update(type=self._seal.type, migration=True)
            if not self._barrier.sealed:
                status["cluster_name"], status["cluster_id"] = self._cluster
            warnings = self._seal.health().reasons  # a lost HSM partition (issue 13)
            if warnings:
                status["warnings"] = list(warnings)
            return status

    def seal_backend_status(self) -> dict[str, Any]:
        """Vault 1.16's ``sys/seal-backend-status`` body (seal/health.py)."""
        return backend_status(self._seal)

    # -- state changes ------------------------------------------------------

    def _changed(self) -> None:
        self._counters.bump(Slot.SEAL)
        for listener in self._listeners:
            listener()

    def initialize(
        self, shares: int, threshold: int, root_token_id: str | None = None, *,
        pgp_keys: list[str] | None = None, root_token_pgp_key: str | None = None,
        recovery_shares: int = 0, recovery_threshold: int = 0,
        recovery_pgp_keys: list[str] | None = None,
    ) -> dict[str, Any]:
        """Initialize storage; the answer is Vault's ``sys/init`` body.

        With ``pgp_keys`` each share is returned encrypted to the matching key
        (see seal/pgp.py for the format), with ``root_token_pgp_key`` the root
        token. Keys are checked before anything is written, and encryption
        happens before the seal config that marks the node initialized, so a
        refused key never leaves an initialized node with unreadable keys.

        With an auto-seal, Vault's rules (node/recovery.py): ``secret_*``/``pgp_keys``
        are refused, the root key is stored by the seal, ``recovery_*`` make the
        recovery key, and the node unseals itself once initialized.
        """
        recovery.check_init_fields(self._seal, recovery.InitRequest(
            shares, threshold, pgp_keys or (), recovery_shares, recovery_threshold,
            recovery_pgp_keys or ()))
        recovery_certs: list[Cert] = []
        if self._seal.auto_unseal:
            shares = threshold = 1  # one stored key, as Vault's barrier config says
            recovery.validate_shares(recovery_shares, recovery_threshold,
                                     recovery.RECOVERY_PREFIX, at_least_one=False)
            recovery_certs = recovery.parse_recovery_keys(recovery_pgp_keys or [],
                                                          recovery_shares)
        config = SealConfig(type=self._seal.type, secret_shares=shares,
                            secret_threshold=threshold)
        self._seal.validate_config(config)
        share_certs = pgp.parse_share_keys(pgp_keys, shares)
        token_cert = (pgp.parse_public_key(root_token_pgp_key, "root_token_pgp_key")
                      if root_token_pgp_key else None)
        with self._lock:
            if self._seal_config() is not None:
                raise BadRequestError("Vault is already initialized")
            new_recovery = (recovery.generate(recovery_shares, recovery_threshold)
                            if self._seal.auto_unseal else None)
            root_key = random_key(KEY_SIZE)
            try:
                protected = self._seal.protect(root_key, config)
            except BaseException:
                wipe(root_key)
                if new_recovery is not None:
                    new_recovery.wipe()
                raise
            split = protected.shares
            try:
                answer = self._initialize(config, root_key, protected, root_token_id,
                                          share_certs, token_cert, new_recovery,
                                          recovery_certs)
            finally:
                for share in split:
                    wipe(share)
                if new_recovery is not None:
                    new_recovery.wipe()
            if self._seal.auto_unseal:
                # Vault's sys/init unseals an auto-sealed node with its stored key at once;
                # a failure is logged, never allowed to lose the answer (recovery keys).
                try:
                    self._open([], config)
                except Exception as exc:  # noqa: BLE001 - the keys must reach the caller
                    log.error("event=auto_unseal_after_init_failed error=%s",
                              type(exc).__name__)
            return answer

    def _initialize(
        self, config: SealConfig, root_key: bytearray, protected: Protected,
        root_token_id: str | None, share_certs: list[Cert], token_cert: Cert | None,
        new_recovery: recovery.NewRecoveryKey | None = None,
        recovery_certs: list[Cert] | None = None,
    ) -> dict[str, Any]:
        """``initialize`` once the root key is protected; wipes ``root_key`` (the caller
        wipes the shares and the recovery key)."""
        split = protected.shares
        keys: list[bytes] | list[bytearray] = split
        recovery_keys: list[bytes] | list[bytearray] = (
            new_recovery.shares if new_recovery is not None else [])
        try:
            if share_certs:
                keys = pgp.encrypt_shares(split, share_certs)
            if recovery_certs and recovery_keys:
                recovery_keys = pgp.encrypt_shares(recovery_keys, recovery_certs)
            keyring = Keyring.generate(self._clock(), self._encryptions)
            self._barrier.persist_keyring(root_key, keyring)
        finally:
            wipe(root_key)  # unseal gets it back from the seal
        self._barrier.install(keyring)
        self._encryptions.reset()
        try:
            self._barrier.put(
                CLUSTER_INFO_PATH,
                json.dumps(
                    {
                        "name": "strongroom-cluster-" + os.urandom(4).hex(),
                        "id": str(uuid.uuid4()),
                    }
                ).encode(),
            )
            root_token = self._bootstrap(self._barrier, root_token_id)
            # Init's own writes are encryptions under term 1: counted from the start.
            encryptions.checkpoint(self._barrier, self._encryptions,
                                   self._max_encryptions, self._clock())
        finally:
            self._barrier.seal()
        if token_cert is not None:
            root_token = base64.b64encode(
                pgp.encrypt(root_token.encode(), token_cert)).decode()
        if protected.stored is not None:
            self._physical.put(SEALED_ROOT_KEY_PATH, protected.stored.to_json())
        if new_recovery is not None:
            apply_ops(self._physical, recovery.store_ops(self._seal, new_recovery.key,
                                                         new_recovery.config))
        # Written last: its presence is what "initialized" means, so a crash
        # part-way through init leaves a node that can simply be initialized again.
        self._physical.put(SEAL_CONFIG_PATH, config.to_json())
        self._changed()
        # The shares go to the caller: the text forms are unavoidable, the bytes are not.
        answer: dict[str, Any] = {
            "keys": [k.hex() for k in keys],
            "keys_base64": [b64_text(k) for k in keys],
            "root_token": root_token,
        }
        if recovery_keys:  # omitted when empty, as Vault's omitempty does
            answer["recovery_keys"] = [k.hex() for k in recovery_keys]
            answer["recovery_keys_base64"] = [b64_text(k) for k in recovery_keys]
        return answer

    def unseal(self, key: str | None, reset: bool = False,
               migrate: bool = False) -> dict[str, Any]:
        """One share; with ``migrate`` a share of the old seal's keys (seal migration)."""
        with self._lock:
            config = self._seal_config()
            if reset:
                self._progress.reset()
                return self.seal_status()
            if key is None:
                raise BadRequestError(
                    "'key' must be specified in request body as JSON, or 'reset' set to true"
                )
            migration = self._migration_for(config)
            if config is not None and migration is None and config.type != self._seal.type:
                raise MigrationError(mismatch(config.type, self._seal.type))
            if migrate and migration is None:
                raise MigrationError(NO_MIGRATION_SEAL)
            if not migrate and migration is not None:
                raise MigrationError(MIGRATION_PENDING)
            if config is None:
                raise NotInitializedError()
            raw = decode_share(key)
            if not self._barrier.sealed:
                wipe(raw)
                return self.seal_status()
            threshold = (migration.keys_config(self._physical, config).secret_threshold
                         if migration is not None else config.secret_threshold)
            # A share already given in this round is ignored, as Vault does.
            parts = self._progress.add(raw, threshold)
            if parts is None:
                return self.seal_status()
            try:
                if migration is not None:
                    self._open_migrating(parts, config, migration)
                else:
                    self._open(parts, config)
            finally:
                for part in parts:
                    wipe(part)
            return self.seal_status()

    def _on_active(self) -> None:
        """Run once this node became active (its own thread: the HA thread must not wait
        for the coordinator lock, which seal() holds while it stops HA)."""
        with self._lock:
            if self._barrier.sealed or self._root_key is None or not self._ha_status.active:
                return
            if self._migration_key is not None:
                try:
                    self._finish_migration()
                except Exception:  # noqa: BLE001 - logged and sealed by _finish_migration
                    return
                return
            try:
                self._refresh_keyring()
            except StrongroomError:
                # Another node migrated the seal or rekeyed (a new root key) while this one
                # was a standby: writing the keyring under the old key would lose everything.
                log.error("event=root_key_outdated: the root key was changed by another node "
                          "(seal migration or rekey); sealing (unseal this node again, with "
                          "the new seal configuration after a migration)")
                self._seal_on_error()

    def _seal_on_error(self) -> None:
        """Seal, but not as an operator would: an auto-seal's retry job may unseal again
        (with the stored root key, the current one)."""
        self.seal()
        self._operator_sealed = False

    def _refresh_keyring(self) -> None:
        """Serve with the stored keyring: reopened with our root key (an auto-seal hands
        over the current one if another node rekeyed or rotated it, node/root_key.py),
        installed if the active node added terms since this node unsealed, so an older
        keyring is never persisted over it. The caller holds the lock.

        Raises:
            StrongroomError: the root key was changed elsewhere and cannot be refreshed.
        """
        keyring = self._keys.current_keyring()
        if keyring.same_keys(self._barrier.keyring):
            keyring.wipe()
            return
        self._barrier.install(keyring)
        encryptions.load(self._barrier, self._encryptions)
        log.info("event=keyring_reloaded term=%d", keyring.active_term)
        self._changed()

    def _open(self, parts: list[bytearray], config: SealConfig) -> None:
        """Get the root key back through the seal and open the keyring (the caller wipes
        ``parts``)."""
        stored = None
        if self._seal.auto_unseal:
            raw = self._physical.get(SEALED_ROOT_KEY_PATH)
            stored = SealedRootKey.from_json(raw) if raw is not None else None
        try:
            self._open_root_key(self._seal.recover(parts, stored, config))
        except InvalidRootKeyError:
            # A root-key change interrupted between its writes (node/root_key.py).
            if not (stored is not None and open_previous(
                    self._physical, self._seal, config, self._open_root_key)):
                raise
            return
        if stored is not None and self._root_key is not None and is_auto_seal(self._seal):
            # A partition configured after init gets its wrap now (seal/health.py).
            complete_wraps(self._seal, self._physical, stored, self._root_key)

    def _open_root_key(self, root_key: bytearray) -> None:
        """Open the keyring with ``root_key``, which this coordinator then owns."""
        try:
            if len(root_key) != KEY_SIZE:
                raise InvalidRootKeyError("unseal failed, invalid key")
            keyring = self._barrier.load_keyring(root_key, self._encryptions)
        except BaseException:
            wipe(root_key)
            raise
        self._barrier.install(keyring)
        try:
            info = self._barrier.get(CLUSTER_INFO_PATH)
            encryptions.load(self._barrier, self._encryptions)
        except Exception:
            # Stay sealed rather than serve from a node whose state did not open cleanly.
            self._barrier.seal()
            wipe(root_key)
            raise
        if info is not None:
            doc = json.loads(info)
            self._cluster = (doc["name"], doc["id"])
        wipe(self._root_key)
        self._root_key = root_key
        self._operator_sealed = False
        self._changed()
        if self._ha_factory is not None and self._ha is None:
            owner: list[HAManager] = []
            manager = self._ha_factory(self._barrier,
                                       lambda status: self._publish_ha(owner[0], status))
            owner.append(manager)
            with self._ha_publish_lock:
                self._ha = manager
            manager.start()

    def _publish_ha(self, owner: HAManager, status: HAStatus) -> None:
        """Called from an HA thread whenever leadership changes.

        A manager replaced by seal/unseal may still return from a blocking Consul
        query and publish: only the current manager's word counts.
        """
        with self._ha_publish_lock:
            if owner is not self._ha:
                return
            became_active = status.active and not self._ha_status.active
            self._ha_status = status
        self._changed()
        if became_active:
            threading.Thread(target=self._on_active, name="on-active", daemon=True).start()

    def seal(self) -> None:
        with self._lock:
            if self._barrier.sealed:
                return
            self._stop_ha()
            self._barrier.seal()  # wipes the keyring and drops its AES-GCM contexts
            wipe(self._root_key)
            self._root_key = None
            wipe(self._migration_key)
            self._migration_key = None
            self._progress.reset()
            self._rekey.reset()
            self._operator_sealed = True
            self._root_gen.cancel()  # its OTP and shares; Vault's attempt ends with a seal
            self._changed()

    def rotate(self) -> None:
        with self._lock:
            if self._barrier.sealed or self._root_key is None:
                raise SealedError()
            # Rotate the stored keyring, with the stored root key (another node may have
            # rotated or rekeyed since this one unsealed).
            self._refresh_keyring()
            keyring = self._barrier.keyring.rotated(self._clock())
            self._barrier.persist_keyring(self._root_key, keyring)
            self._barrier.install(keyring)
            self._encryptions.reset()  # a new term starts at 0, as in Vault
            self._changed()

    def checkpoint_encryptions(self) -> None:
        """Persist the node's encryption count; rotate the barrier key past the limit.

        A job for the owner's background work, every ``encryptions.CHECK_INTERVAL``
        seconds (Vault checks every 5 minutes). Does nothing while sealed or on a standby
        (a standby never writes). A rotation is logged with its reason.

        Raises:
            StrongroomError: storage failed (the next run tries again).
        """
        with self._lock:
            if self._barrier.sealed or self._root_key is None:
                return
            if self._ha_factory is not None and not self._ha_status.active:
                return
            reason = encryptions.checkpoint(self._barrier, self._encryptions,
                                            self._max_encryptions, self._clock())
            if reason is not None:
                log.info("event=barrier_auto_rotate reason=%r term=%d", reason,
                         self._barrier.keyring.active_term)
                self.rotate()

    def _stop_ha(self) -> None:
        if self._ha is not None:
            self._ha.stop()  # publishes its last status while still the current manager
        with self._ha_publish_lock:
            self._ha = None
            self._ha_status = HAStatus(enabled=self._ha_factory is not None)

    def shutdown(self) -> None:
        """Process exit, first step: hand leadership over before anything else stops, and
        keep following the active node while the workers drain (``close`` ends HA)."""
        with self._lock:
            if self._ha is not None:
                self._ha.retire()

    def close(self) -> None:
        """Process exit, last step: end the HA session and the service registration."""
        with self._lock:
            self._stop_ha()

    def step_down(self) -> None:
        if self._ha is not None:
            self._ha.step_down()

    def ha_lost(self) -> None:
        if self._ha is not None:
            self._ha.lost()

    def auto_unseal(self) -> bool:
        """Unseal with no operator, when the seal opens the root key itself (issue 13's
        PKCS#11; a Shamir seal never does). Returns whether the node is unsealed.

        Raises:
            BadRequestError: the seal could not open the stored root key.
        """
        with self._lock:
            if not self._seal.auto_unseal or not self._barrier.sealed:
                return not self._barrier.sealed
            config = self._seal_config()
            if config is None:
                return False
            if self._migration_for(config) is not None:
                if not self._migration_logged:  # Vault's warning, once
                    log.warning("event=seal_migration_pending: entering seal migration mode; "
                                "the node will not unseal itself (unseal -migrate)")
                    self._migration_logged = True
                return False  # storage still describes the old seal: unseal -migrate
            self._open([], config)
            return True

    def retry_auto_unseal(self) -> bool:
        """The owner's retry job (node/auto_unseal.py): ``auto_unseal`` unless an operator
        sealed the node (``sys/seal``; a restart unseals it again, as in Vault).

        Raises:
            StrongroomError: the seal could not open the stored root key.
        """
        with self._lock:
            if self._operator_sealed:
                return False
            return self.auto_unseal()

    def check_seal(self) -> None:
        """Probe the seal's partitions (health, logged on change); auto-seals only."""
        if is_auto_seal(self._seal):
            self._seal.check()
            with self._lock:
                # A partition back while unsealed gets the wraps it missed (root_key.py).
                if (self._root_key is not None and not self._barrier.sealed
                        and not self._ha_status.standby):
                    complete_all_wraps(self._physical, self._seal, self._barrier,
                                       self._root_key)

    def unseal_with_root_key(self, root_key: bytes | bytearray) -> None:
        """Open directly with the root key (dev mode, where the single share is the key)."""
        with self._lock:
            self._open_root_key(bytearray(root_key))
