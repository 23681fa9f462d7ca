"""The PKCS#11 auto-seal: the root key encrypted by an AES-256 key inside one or more HSM
partitions (tokens), so the node unseals itself.

The root key is encrypted (CKM_AES_GCM, a fresh random 12-byte IV each time) once per
partition, with that partition's own key, and the node stores every result
(``SealedRootKey``; each ``WrappedRootKey`` names the key by ``<token>/<key label>``).
Unwrapping tries the partitions in priority order (Vault's Seal HA) and stops at the
first that opens a wrap (its own first, then any made by a key of the same label in
another token: a copy of its key); a partition that is missing, locked, refuses the PIN or whose
library does not load is skipped and reported (``health``), so one HSM can fail. A
partition configured after init has no wrap yet: :meth:`Pkcs11Seal.complete` gives it
one after the next successful unseal, and never drops an existing one.

Health: every attempt on a partition records whether it worked; a change is logged
once (``event=seal_partition_lost`` / ``seal_partition_recovered``). :meth:`check`
probes every partition (a GCM encryption of random bytes: the key is there and works);
the owner runs it periodically (node/auto_unseal.py). A partition whose PIN was
refused is not tried again until the process restarts: retrying a wrong PIN every few
seconds would lock a real HSM's user.

Thread safety: one lock serializes every operation of a seal; PKCS#11 libraries are
shared per process with their own lock (seal/pkcs11_token.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from strongroom.barrier.secmem import wipe
from strongroom.errors import BadRequestError, StrongroomError
from strongroom.seal import pkcs11_token as tok
from strongroom.seal.base import (
    BackendHealth,
    Protected,
    SealConfig,
    SealedRootKey,
    SealHealth,
    WrappedRootKey,
)
from strongroom.seal.pkcs11_config import PartitionConfig
from strongroom.seal.pkcs11_token import PartitionError

log = logging.getLogger(__name__)

T = TypeVar("T")
PKCS11 = "pkcs11"
MECHANISM_NAME = "CKM_AES_GCM"
_PROBE_BYTES = 32


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _State:
    healthy: bool | None = None  # None: not tried yet
    since: datetime | None = None  # unhealthy since
    reason: str = ""
    pin_refused: bool = False


class SealUnavailableError(StrongroomError):
    """No partition could do what was asked; the message lists each one's reason."""


class Pkcs11Seal:
    """Implements seal/base.py's ``Seal`` (and ``wrap``/``unwrap``) over PKCS#11."""

    def __init__(self, partitions: Sequence[PartitionConfig],
                 clock: Callable[[], datetime] = _utcnow) -> None:
        if not partitions:
            raise ValueError("a pkcs11 seal needs at least one partition")
        self._partitions = tuple(sorted(partitions, key=lambda p: p.priority))
        self._clock = clock
        self._lock = threading.RLock()  # one PKCS#11 operation at a time
        # Health is read under its own lock: sys/seal-status must not wait for a probe
        # stuck on an unreachable network HSM.
        self._state_lock = threading.Lock()
        self._state = {p.name: _State() for p in self._partitions}

    @property
    def type(self) -> str:
        return PKCS11

    @property
    def auto_unseal(self) -> bool:
        return True

    @property
    def partitions(self) -> tuple[PartitionConfig, ...]:
        return self._partitions

    def validate_config(self, config: SealConfig) -> None:
        """Nothing to refuse: an auto-seal stores one wrapped root key whatever the
        request's secret_shares (recovery shares are the coordinator's business)."""

    # -- wrap / unwrap ----------------------------------------------------------

    def protect(self, root_key: bytearray, config: SealConfig) -> Protected:
        return Protected(shares=[], stored=self.wrap(root_key))

    def recover(self, shares: Sequence[bytearray], stored: SealedRootKey | None,
                config: SealConfig) -> bytearray:
        if shares:
            raise BadRequestError("the pkcs11 seal opens the root key itself: "
                                  "no unseal key is needed")
        if stored is None:
            raise SealUnavailableError("no stored root key (core/hsm/barrier-unseal-keys "
                                       "is missing)")
        return self.unwrap(stored)

    def wrap(self, plaintext: bytes | bytearray) -> SealedRootKey:
        """``plaintext`` encrypted by every reachable partition (generating the key
        where ``generate_key`` allows and it is absent); at least one must succeed.

        Raises:
            SealUnavailableError: no partition could encrypt (each one's reason).
        """
        with self._lock:
            wrapped: list[WrappedRootKey] = []
            failures: list[str] = []
            for partition in self._partitions:
                try:
                    wrapped.append(self._attempt(partition,
                                                 partial(self._wrap_one, plaintext=plaintext)))
                except PartitionError as exc:
                    failures.append(f"{partition.name}: {exc.reason}")
            if not wrapped:
                raise SealUnavailableError("no seal partition could encrypt: "
                                           + "; ".join(failures))
            return SealedRootKey(PKCS11, tuple(wrapped))

    def unwrap(self, stored: SealedRootKey) -> bytearray:
        """The plaintext, from the first partition (by priority) that opens its wrap;
        a new bytearray the caller wipes.

        Raises:
            SealUnavailableError: no partition could decrypt (each one's reason).
        """
        with self._lock:
            failures: list[str] = []
            for partition in self._partitions:
                mine = [w for w in stored.wrapped if w.key_id == partition.seal_key_id]
                # Then wraps made by another token's key of the same label: a key copied
                # under wrap (strongroom hsm copy-key) opens them too.
                mine += [w for w in stored.wrapped if w not in mine
                         and w.key_id.endswith("/" + partition.key_label)]
                if not mine:
                    failures.append(f"{partition.name}: no root key stored for "
                                    f"{partition.seal_key_id}")
                    continue
                try:
                    return self._attempt(partition, partial(self._unwrap_one, wrapped=mine))
                except PartitionError as exc:
                    failures.append(f"{partition.name}: {exc.reason}")
            raise SealUnavailableError("no seal partition could decrypt the root key: "
                                       + "; ".join(failures))

    def complete(self, stored: SealedRootKey, plaintext: bytes | bytearray
                 ) -> SealedRootKey | None:
        """After a successful unwrap: ``stored`` plus a wrap for every reachable partition
        that has none (a partition added later), or None when nothing changed. Also
        probes the partitions the unwrap did not need, so health covers them all."""
        with self._lock:
            added: list[WrappedRootKey] = []
            for partition in self._partitions:
                if partition.mechanism != tok.CKM_AES_GCM:
                    continue
                has = any(w.key_id == partition.seal_key_id for w in stored.wrapped)
                try:
                    if has:
                        self._attempt(partition, self._probe_one)
                    else:
                        added.append(self._attempt(
                            partition, partial(self._wrap_one, plaintext=plaintext)))
                        log.info("event=seal_partition_wrapped seal=%s key_id=%s",
                                 partition.name, partition.seal_key_id)
                except PartitionError:
                    pass  # recorded in health by _attempt
            if not added:
                return None
            return SealedRootKey(stored.seal_type, stored.wrapped + tuple(added))

    def check(self) -> None:
        """Probe every partition (not those whose PIN was refused) and record health."""
        with self._lock:
            for partition in self._partitions:
                if self._state[partition.name].pin_refused:
                    continue
                try:
                    self._attempt(partition, self._probe_one)
                except PartitionError:
                    pass

    # -- one partition --------------------------------------------------------------

    def _attempt(self, partition: PartitionConfig,
                 fn: Callable[[PartitionConfig], T]) -> T:
        state = self._state[partition.name]
        if state.pin_refused:
            raise PartitionError(state.reason, pin_refused=True)
        try:
            try:
                result = fn(partition)
            except PartitionError as exc:
                if exc.pin_refused:
                    raise
                # A token that appeared (or came back) after the library was initialized
                # is seen only once it is initialized again (SoftHSM; HSM clients after
                # an outage): once, on failure only.
                tok.reload(partition.lib)
                result = fn(partition)
        except PartitionError as exc:
            self._record(partition, exc)
            raise
        self._record(partition, None)
        return result

    def _wrap_one(self, partition: PartitionConfig,
                  plaintext: bytes | bytearray) -> WrappedRootKey:
        with tok.session(partition, rw=partition.generate_key) as sess:
            key = tok.find_key(sess, partition)
            if key is None and partition.generate_key:
                key = tok.generate_key(sess, partition)
                log.info("event=seal_key_generated seal=%s key_id=%s", partition.name,
                         partition.seal_key_id)
            if key is None:
                raise PartitionError(f"key {partition.key_label!r} not found in token "
                                     f"{partition.token} (generate_key is false)")
            iv, ciphertext = tok.encrypt(key, plaintext)
        return WrappedRootKey(partition.seal_key_id, MECHANISM_NAME, ciphertext, iv)

    def _unwrap_one(self, partition: PartitionConfig,
                    wrapped: list[WrappedRootKey]) -> bytearray:
        with tok.session(partition) as sess:
            key = tok.require_key(sess, partition)
            last: PartitionError | None = None
            for entry in wrapped:
                if entry.mechanism != MECHANISM_NAME:
                    last = PartitionError(f"stored root key uses {entry.mechanism}, "
                                          f"not {MECHANISM_NAME}")
                    continue
                try:
                    return tok.decrypt(key, entry.iv, entry.ciphertext)
                except tok.PKCS11Error as exc:
                    # SoftHSM says CKR_GENERAL_ERROR for a GCM tag that does not match.
                    last = PartitionError(
                        f"token {partition.token}: the stored root key ({entry.key_id}) "
                        f"does not decrypt with key {partition.key_label!r} "
                        f"({tok.describe(exc)})")
            assert last is not None
            raise last

    def _probe_one(self, partition: PartitionConfig) -> None:
        with tok.session(partition) as sess:
            key = tok.require_key(sess, partition)
            probe = bytearray(_PROBE_BYTES)
            iv, ciphertext = tok.encrypt(key, probe)
            back = tok.decrypt(key, iv, ciphertext)
            if back != probe:
                raise PartitionError(f"token {partition.token}: AES-GCM round trip failed")
            wipe(back)

    def _record(self, partition: PartitionConfig, exc: PartitionError | None) -> None:
        with self._state_lock:
            self._record_locked(partition, exc)

    def _record_locked(self, partition: PartitionConfig, exc: PartitionError | None) -> None:
        state = self._state[partition.name]
        if exc is None:
            if state.healthy is False:
                log.info("event=seal_partition_recovered seal=%s token=%r", partition.name,
                         partition.token)
            state.healthy, state.since, state.reason = True, None, ""
            return
        if state.healthy is not False or state.reason != exc.reason:
            log.warning("event=seal_partition_lost seal=%s reason=%r", partition.name,
                        exc.reason)
        if state.healthy is not False:
            state.since = self._clock()
        state.healthy, state.reason = False, exc.reason
        state.pin_refused = exc.pin_refused
        if exc.pin_refused:
            state.reason = exc.reason + " (not retried until restart)"

    # -- health ---------------------------------------------------------------------

    def health(self) -> SealHealth:
        with self._state_lock:
            backends: list[BackendHealth] = []
            reasons: list[str] = []
            for partition in self._partitions:
                state = self._state[partition.name]
                healthy = state.healthy is not False
                backends.append(BackendHealth(partition.name, healthy,
                                              None if healthy else state.since))
                if not healthy:
                    reasons.append(f'seal partition "{partition.name}" unavailable: '
                                   f"{state.reason}")
            return SealHealth(degraded=bool(reasons), reasons=tuple(reasons),
                              backends=tuple(backends))
