"""The coordinator's generate-root operations (thin: the state machine is
node/generate_root.py).

A mixin of :class:`~strongroom.node.coordinator.LocalCoordinator`, kept apart so that
module stays small. Shares authorize it: unseal key shares on a Shamir node, recovery key
shares on an auto-sealed one.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from strongroom.barrier.barrier import AESGCMBarrier
from strongroom.barrier.secmem import wipe
from strongroom.errors import BadRequestError, SealedError, StrongroomError
from strongroom.ha.state import HAStatus
from strongroom.node import recovery
from strongroom.node.generate_root import RootGeneration
from strongroom.physical.base import Backend
from strongroom.seal.base import Seal, SealConfig
from strongroom.seal.shamir_seal import ShamirSeal

log = logging.getLogger(__name__)
# Creates a root token in the (unsealed) barrier, as init does; returns its id.
RootTokenMaker = Callable[[Backend], str]


class RootGenCoordinator(Protocol):
    """The generate-root operations a worker calls (over node/rpc.py)."""

    def generate_root_status(self) -> dict[str, Any]: ...

    def generate_root_start(self, otp: str | None = None,
                            pgp_key: str | None = None) -> dict[str, Any]: ...

    def generate_root_cancel(self) -> None: ...

    def generate_root_update(self, key: str, nonce: str) -> dict[str, Any]: ...


class RootGenOperations:
    """``sys/generate-root/*``, for the coordinator."""

    # Set by LocalCoordinator.__init__.
    _lock: threading.RLock
    _seal: Seal
    _barrier: AESGCMBarrier
    _physical: Backend
    _root_key: bytearray | None
    _ha_status: HAStatus
    _clock: Callable[[], datetime]
    _root_gen: RootGeneration
    _root_token_maker: RootTokenMaker | None

    def _seal_config(self) -> SealConfig | None:
        raise NotImplementedError

    def _root_gen_required(self) -> int:
        """The threshold of the keys that authorize generate-root (recovery keys on an
        auto-sealed node); refuses while uninitialized, sealed or standby."""
        config = self._seal_config()
        if config is None:
            raise BadRequestError("server is not yet initialized")
        if self._barrier.sealed or self._root_key is None:
            raise SealedError()
        if self._ha_status.standby:
            raise BadRequestError("Vault is in standby mode")
        if self._seal.auto_unseal:
            return self._recovery_threshold(config)
        return config.secret_threshold

    def _recovery_threshold(self, config: SealConfig) -> int:
        found = recovery.load_config(self._physical)
        if found is None or found.secret_shares < 1:
            # Vault: no recovery key, nothing can authorize it.
            raise BadRequestError("recovery key not found")
        return found.secret_threshold

    def _authenticate_shares(self, parts: list[bytearray]) -> None:
        """Check that ``parts`` combine to this node's key: the root key (Shamir), the
        recovery key (auto-seal). The caller wipes ``parts``."""
        config = self._seal_config()
        if config is None:
            raise BadRequestError("server is not yet initialized")
        if self._seal.auto_unseal:
            threshold = self._recovery_threshold(config)
            try:
                combined = recovery.combine_shares(parts, threshold, "recovery key")
            except StrongroomError as exc:  # Vault: a 400 for generate-root
                raise BadRequestError(exc.message) from None
            try:
                recovery.verify(self._physical, self._seal, combined)
            finally:
                wipe(combined)
            return
        combined = ShamirSeal().recover(parts, None, config)
        try:
            if self._root_key is None or not hmac.compare_digest(combined, self._root_key):
                raise BadRequestError("root key verification failed: unseal failed, invalid key")
        finally:
            wipe(combined)

    def _make_root_token(self) -> str:
        if self._root_token_maker is None:
            from strongroom.core.bootstrap import make_root_token_maker  # noqa: PLC0415 - cycle
            self._root_token_maker = make_root_token_maker(self._clock)
        token = self._root_token_maker(self._barrier)
        log.info("event=root_token_generated")
        return token

    def generate_root_status(self) -> dict[str, Any]:
        """Vault's ``GET sys/generate-root/attempt`` body."""
        with self._lock:
            return self._root_gen.status(self._root_gen_required())

    def generate_root_start(self, otp: str | None = None,
                            pgp_key: str | None = None) -> dict[str, Any]:
        """Start an attempt (an OTP is generated and returned when neither is given)."""
        with self._lock:
            return self._root_gen.start(otp, pgp_key, self._root_gen_required())

    def generate_root_cancel(self) -> None:
        with self._lock:
            self._root_gen_required()
            self._root_gen.cancel()

    def generate_root_update(self, key: str, nonce: str) -> dict[str, Any]:
        """One share towards the new root token (returned encoded at the threshold)."""
        with self._lock:
            return self._root_gen.update(key, nonce, self._root_gen_required(),
                                         self._authenticate_shares, self._make_root_token)
