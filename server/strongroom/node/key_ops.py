"""The coordinator's rekey and root-key rotation operations (thin: the state machines are
node/rekey.py, the key changes node/root_key.py).

A mixin of :class:`~strongroom.node.coordinator.LocalCoordinator`, kept apart so that
module stays small; every method runs under the coordinator's lock, after Vault's
preconditions (unsealed, not a standby, recovery keys only with an auto-seal).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from strongroom.barrier.barrier import AESGCMBarrier
from strongroom.barrier.secmem import wipe
from strongroom.errors import BadRequestError, SealedError
from strongroom.ha.state import HAStatus
from strongroom.node.rekey import Rekeyer, decode_key
from strongroom.node.root_key import NodeKeys
from strongroom.seal.base import Seal


class KeyCoordinator(Protocol):
    """The key operations a worker calls (over node/rpc.py) or a single process directly."""

    def rekey_status(self, target: str = "barrier") -> dict[str, Any]: ...

    def rekey_init(self, target: str = "barrier", secret_shares: int = 0,
                   secret_threshold: int = 0, pgp_keys: list[str] | None = None,
                   backup: bool = False, require_verification: bool = False
                   ) -> dict[str, Any]: ...

    def rekey_cancel(self, target: str = "barrier") -> None: ...

    def rekey_update(self, key: str | None, nonce: str = "",
                     target: str = "barrier") -> dict[str, Any]: ...

    def rekey_verify_status(self, target: str = "barrier") -> dict[str, Any]: ...

    def rekey_verify(self, key: str | None, nonce: str = "",
                     target: str = "barrier") -> dict[str, Any]: ...

    def rekey_verify_restart(self, target: str = "barrier") -> dict[str, Any]: ...

    def rekey_backup(self, target: str = "barrier") -> dict[str, Any]: ...

    def rekey_backup_delete(self, target: str = "barrier") -> None: ...

    def rotate_root(self) -> None: ...


class KeyOperations:
    """Rekey (``sys/rekey*``) and ``sys/rotate/root``, for the coordinator."""

    # Set by LocalCoordinator.__init__.
    _lock: threading.RLock
    _seal: Seal
    _barrier: AESGCMBarrier
    _root_key: bytearray | None
    _ha_status: HAStatus
    _keys: NodeKeys
    _rekey: Rekeyer

    def _set_root_key(self, key: bytearray) -> None:
        if key is not self._root_key:
            wipe(self._root_key)
        self._root_key = key

    def _rekey_ready(self, target: str, *, backup: bool = False) -> bool:
        """Vault's preconditions of every rekey call; True for the recovery target.

        The backups are read and deleted whatever the seal (as Vault does).
        """
        recovery_target = target == "recovery"
        if target not in ("barrier", "recovery"):
            raise BadRequestError(f"unknown rekey target {target!r}")
        if recovery_target and not backup and not self._seal.auto_unseal:
            raise BadRequestError("recovery rekeying not supported")
        if self._barrier.sealed or self._root_key is None:
            raise SealedError()
        if self._ha_status.standby:
            raise BadRequestError("Vault is in standby mode")
        return recovery_target

    def rekey_status(self, target: str = "barrier") -> dict[str, Any]:
        with self._lock:
            return self._rekey.status(self._rekey_ready(target))

    def rekey_init(self, target: str = "barrier", secret_shares: int = 0,
                   secret_threshold: int = 0, pgp_keys: list[str] | None = None,
                   backup: bool = False, require_verification: bool = False
                   ) -> dict[str, Any]:
        with self._lock:
            return self._rekey.start(self._rekey_ready(target), secret_shares,
                                     secret_threshold, pgp_keys or [], backup,
                                     require_verification)

    def rekey_cancel(self, target: str = "barrier") -> None:
        with self._lock:
            self._rekey.cancel(self._rekey_ready(target))

    def rekey_update(self, key: str | None, nonce: str = "",
                     target: str = "barrier") -> dict[str, Any]:
        return self._with_share(key, target, lambda recovery_target, share:
                                self._rekey.update(recovery_target, share, nonce))

    def rekey_verify_status(self, target: str = "barrier") -> dict[str, Any]:
        with self._lock:
            return self._rekey.verify_status(self._rekey_ready(target))

    def rekey_verify(self, key: str | None, nonce: str = "",
                     target: str = "barrier") -> dict[str, Any]:
        return self._with_share(key, target, lambda recovery_target, share:
                                self._rekey.verify(recovery_target, share, nonce))

    def _with_share(self, key: str | None, target: str,
                    step: Callable[[bool, bytearray], dict[str, Any]]) -> dict[str, Any]:
        """Run a rekey ``step`` with the decoded share, once the round may go on; the
        share is wiped here if it never reaches the step (which owns it then)."""
        share = decode_key(key)
        with self._lock:
            try:
                recovery_target = self._rekey_ready(target)
            except BaseException:
                wipe(share)
                raise
            return step(recovery_target, share)

    def rekey_verify_restart(self, target: str = "barrier") -> dict[str, Any]:
        with self._lock:
            return self._rekey.verify_restart(self._rekey_ready(target))

    def rekey_backup(self, target: str = "barrier") -> dict[str, Any]:
        with self._lock:
            return self._keys.read_backup(self._rekey_ready(target, backup=True))

    def rekey_backup_delete(self, target: str = "barrier") -> None:
        with self._lock:
            self._keys.delete_backup(self._rekey_ready(target, backup=True))

    def rotate_root(self) -> None:
        """``sys/rotate/root``: a new root key, stored by the seal; the terms stay."""
        with self._lock:
            self._rekey_ready("barrier")
            self._keys.rotate_root()
