"""Changing the node's root key and key shares: what a rekey or ``sys/rotate/root`` does.

The root key is the KEK of the keyring (barrier/barrier.py): changing it means
re-persisting the keyring under the new key. With an auto-seal the new key is
also stored wrapped by the seal; with Shamir, a rekey also stores the new share
count and threshold. These writes go together in one ``apply_ops`` (atomic on
Consul, file and inmem storage). A backend without transactions would land them one
after the other, and an owner killed between the new wrapped root key and the keyring
it opens would leave a keyring no stored key opens (every secret lost). So, as a
second line of defence, an auto-seal first
stores the current root key, wrapped, at :data:`PREVIOUS_SEALED_ROOT_KEY_PATH`; an
unseal whose stored root key does not open the keyring falls back to it
(:func:`open_previous`), and a completed change removes it.

Before any change the stored keyring is reopened with the key this node holds:
another node of an HA cluster may have rekeyed (or rotated) since this one
unsealed. An auto-sealed node then takes the current root key from the seal; a
Shamir node refuses (it cannot know the new key) until it is unsealed again.
This is also the keyring that is re-persisted, so terms another node added are
kept. :class:`NodeKeys` implements node/rekey.py's ``RekeyHost`` for the coordinator.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from strongroom.barrier.barrier import KEYRING_PATH, AESGCMBarrier, InvalidRootKeyError
from strongroom.barrier.counter import EncryptionCounter
from strongroom.barrier.keyring import KEY_SIZE, Keyring
from strongroom.barrier.secmem import random_key, wipe
from strongroom.errors import BadRequestError, StrongroomError
from strongroom.node import recovery
from strongroom.physical.base import Backend, Op, apply_ops
from strongroom.seal.base import (
    SEAL_CONFIG_PATH,
    SEALED_ROOT_KEY_PATH,
    AutoSeal,
    Seal,
    SealConfig,
    SealedRootKey,
)
from strongroom.seal.health import complete_wraps

log = logging.getLogger(__name__)

# Outside the barrier, as Vault keeps them: PGP-encrypted shares are no secret.
BARRIER_BACKUP_PATH = "core/unseal-keys-backup"
RECOVERY_BACKUP_PATH = "core/recovery-keys-backup"
# Strongroom's own entry (Vault has none): the root key a change is replacing, wrapped by
# the seal, while the change is under way (see the module's note).
PREVIOUS_SEALED_ROOT_KEY_PATH = "core/hsm/barrier-unseal-keys-previous"
_WRONG_KEY = ("failed to read root key: invalid key: failed to decrypt keys from storage: "
              "cipher: message authentication failed")


class NodeKeys:
    """The node's key changes, on behalf of the coordinator (which holds its lock)."""

    def __init__(self, physical: Backend, seal: Seal, barrier: AESGCMBarrier,
                 encryptions: EncryptionCounter, root_key: Callable[[], bytearray | None],
                 set_root_key: Callable[[bytearray], None]) -> None:
        self._physical = physical
        self._seal = seal
        self._barrier = barrier
        self._encryptions = encryptions
        self._root_key = root_key
        self._set_root_key = set_root_key

    # -- RekeyHost --------------------------------------------------------------

    @property
    def auto_unseal(self) -> bool:
        return self._seal.auto_unseal

    def authorizing_config(self, recovery_target: bool) -> SealConfig | None:
        if recovery_target:
            return recovery.load_config(self._physical)
        raw = self._physical.get(SEAL_CONFIG_PATH)
        return SealConfig.from_json(raw) if raw is not None else None

    def check_current_key(self, recovery_target: bool, key: bytearray) -> None:
        if recovery_target:
            recovery.verify(self._physical, self._seal, key)
            return
        try:
            self._barrier.load_keyring(key).wipe()
        except InvalidRootKeyError:
            raise StrongroomError(_WRONG_KEY) from None

    def install(self, recovery_target: bool, new_key: bytearray | None,
                config: SealConfig) -> None:
        if recovery_target:
            assert new_key is not None
            apply_ops(self._physical, recovery.store_ops(self._seal, new_key, config))
            log.info("event=recovery_rekeyed shares=%d threshold=%d", config.secret_shares,
                     config.secret_threshold)
            return
        shamir = None if self._seal.auto_unseal else SealConfig(
            type=self._seal.type, secret_shares=config.secret_shares,
            secret_threshold=config.secret_threshold)
        self.replace_root_key(bytearray(new_key) if new_key is not None else None, shamir)
        log.info("event=barrier_rekeyed shares=%d threshold=%d", config.secret_shares,
                 config.secret_threshold)

    def store_backup(self, recovery_target: bool, doc: bytes) -> None:
        self._physical.put(RECOVERY_BACKUP_PATH if recovery_target else BARRIER_BACKUP_PATH,
                           doc)

    # -- backups (sys/rekey/backup, sys/rekey/recovery-key-backup) -------------------

    def read_backup(self, recovery_target: bool) -> dict[str, Any]:
        raw = self._physical.get(RECOVERY_BACKUP_PATH if recovery_target
                                 else BARRIER_BACKUP_PATH)
        if raw is None:
            raise BadRequestError("no backed-up keys found")
        doc = json.loads(raw)
        keys: dict[str, list[str]] = doc.get("Keys") or {}
        b64 = {fp: [_hex_to_b64(k) for k in shares] for fp, shares in keys.items()}
        return {"nonce": doc.get("Nonce", ""), "keys": keys, "keys_base64": b64}

    def delete_backup(self, recovery_target: bool) -> None:
        self._physical.delete(RECOVERY_BACKUP_PATH if recovery_target
                              else BARRIER_BACKUP_PATH)

    # -- the root key --------------------------------------------------------------

    def current_keyring(self) -> Keyring:
        """The stored keyring, opened with this node's root key (refreshed from an
        auto-seal if another node changed it); the caller wipes it.

        Raises:
            StrongroomError: (500) a Shamir node whose root key was changed elsewhere.
        """
        held = self._root_key()
        if held is not None:
            try:
                return self._barrier.load_keyring(held, self._encryptions)
            except InvalidRootKeyError:
                pass
        if self._seal.auto_unseal:
            raw = self._physical.get(SEALED_ROOT_KEY_PATH)
            if raw is not None:
                config = self.authorizing_config(False) or SealConfig(self._seal.type, 1, 1)
                fresh = self._seal.recover([], SealedRootKey.from_json(raw), config)
                try:
                    keyring = self._barrier.load_keyring(fresh, self._encryptions)
                except BaseException:
                    wipe(fresh)
                    raise
                self._set_root_key(fresh)
                return keyring
        raise StrongroomError("the root key was changed by another node since this node "
                              "was unsealed: seal it and unseal it with the current keys")

    def replace_root_key(self, new_key: bytearray | None,
                         shamir_config: SealConfig | None) -> None:
        """Make ``new_key`` (owned from now on; None: a random one) the root key.

        ``shamir_config``: the new seal configuration of a Shamir rekey, written with it.
        """
        key = new_key if new_key is not None else random_key(KEY_SIZE)
        keyring: Keyring | None = None
        try:
            keyring = self.current_keyring()
            ops: list[Op] = [("put", KEYRING_PATH, self._barrier.keyring_blob(key, keyring))]
            held = self._root_key()
            if self._seal.auto_unseal and held is not None:
                # Written (and durable) before anything changes: see the module's note.
                config = self.authorizing_config(False) or SealConfig(self._seal.type, 1, 1)
                previous = self._seal.protect(held, config).stored
                if previous is not None:
                    self._physical.put(PREVIOUS_SEALED_ROOT_KEY_PATH, previous.to_json())
            if self._seal.auto_unseal:
                config = self.authorizing_config(False) or SealConfig(self._seal.type, 1, 1)
                stored = self._seal.protect(key, config).stored
                if stored is None:
                    raise StrongroomError(f"seal type {self._seal.type} stored no root key")
                ops.insert(0, ("put", SEALED_ROOT_KEY_PATH, stored.to_json()))
            if shamir_config is not None:
                ops.append(("put", SEAL_CONFIG_PATH, shamir_config.to_json()))
            apply_ops(self._physical, ops)
        except BaseException:
            wipe(key)
            raise
        finally:
            if keyring is not None:
                keyring.wipe()
        self._set_root_key(key)
        if self._seal.auto_unseal:
            self._physical.delete(PREVIOUS_SEALED_ROOT_KEY_PATH)

    def rotate_root(self) -> None:
        """``sys/rotate/root``: a new root key; the keyring and its terms stay."""
        if not self._seal.auto_unseal:
            # Strongroom's Shamir root key is what the shares combine into: a new one
            # needs new shares, which is a rekey (OpenBao keeps a KEK layer instead).
            raise BadRequestError("rotating the root key of a Shamir-sealed node requires new "
                                  "unseal keys: use sys/rekey (strongroom operator rekey)")
        self.replace_root_key(None, None)
        log.info("event=root_key_rotated seal=%s", self._seal.type)


def complete_all_wraps(physical: Backend, seal: AutoSeal, barrier: AESGCMBarrier,
                       root_key: bytearray) -> None:
    """While unsealed (the owner's periodic seal check): give a partition that came back
    the wraps it missed while it was down, of the root key and of the recovery key, so
    Seal HA's redundancy is restored without waiting for a restart. The caller holds the
    coordinator's lock (no rotation in between) and is the active node (it writes).

    The in-memory root key is used only if it opens the stored keyring (never a stale
    one's wrap next to the current key's); the recovery key is unwrapped only when its
    entry lacks a seal key the root key's entry has.
    """
    raw = physical.get(SEALED_ROOT_KEY_PATH)
    if raw is None:
        return
    try:
        barrier.load_keyring(root_key).wipe()
    except StrongroomError:
        return
    stored = SealedRootKey.from_json(raw)
    complete_wraps(seal, physical, stored, root_key)
    raw = physical.get(SEALED_ROOT_KEY_PATH)
    rec_raw = physical.get(recovery.RECOVERY_KEY_PATH)
    if raw is None or rec_raw is None:
        return
    have = {w.key_id for w in SealedRootKey.from_json(raw).wrapped}
    rec = SealedRootKey.from_json(rec_raw, recovery.RECOVERY_KEY_PATH)
    if have <= {w.key_id for w in rec.wrapped}:
        return
    try:
        key = seal.unwrap(rec)
    except StrongroomError as exc:
        log.warning("event=seal_wraps_not_completed entry=%s error=%s",
                    recovery.RECOVERY_KEY_PATH, type(exc).__name__)
        return
    try:
        complete_wraps(seal, physical, rec, key, recovery.RECOVERY_KEY_PATH)
    finally:
        wipe(key)


def open_previous(physical: Backend, seal: Seal, config: SealConfig,
                  open_key: Callable[[bytearray], None]) -> bool:
    """After the stored root key failed to open the keyring: open it with the root key a
    change was replacing when its owner stopped (file storage, see the module's note),
    and store that key back as the current one. False if there is none.

    Raises:
        StrongroomError: that key does not open the keyring either.
    """
    raw = physical.get(PREVIOUS_SEALED_ROOT_KEY_PATH)
    if raw is None:
        return False
    previous = SealedRootKey.from_json(raw)
    open_key(seal.recover([], previous, config))
    log.warning("event=root_key_change_rolled_back reason=%r",
                "a root key change stopped before the keyring was written")
    physical.put(SEALED_ROOT_KEY_PATH, raw)
    physical.delete(PREVIOUS_SEALED_ROOT_KEY_PATH)
    return True


def _hex_to_b64(text: str) -> str:
    import base64

    return base64.b64encode(bytes.fromhex(text)).decode()
