"""The seal interface: what protects the root key that opens the keyring.

A seal decides two things (compare OpenBao's ``vault/seal.go``):

* at init, how the new root key is protected. A Shamir seal splits it into
  shares handed to the operator and stores nothing; an auto-seal (PKCS#11,
  issue 13) encrypts it with a key the seal holds and the node stores the
  result (:class:`SealedRootKey`, in plaintext storage, since it is read while
  sealed);
* at unseal, how the root key comes back: combined from the operator's shares,
  or decrypted from storage by the seal itself (then the node unseals with no
  operator, and recovery keys, not unseal keys, authorize rekey and generate-root).

The node coordinator (node/coordinator.py) talks to a ``Seal``, never to a seal
algorithm directly. Root keys and shares are ``bytearray`` objects that their
receiver wipes (barrier/secmem.py).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeGuard

from strongroom.errors import StrongroomError

# Plaintext storage entries (read while sealed), at Vault's paths.
SEAL_CONFIG_PATH = "core/seal-config"
RECOVERY_CONFIG_PATH = "core/recovery-config"
SEALED_ROOT_KEY_PATH = "core/hsm/barrier-unseal-keys"


@dataclass(frozen=True)
class SealConfig:
    """The stored seal configuration (``core/seal-config``), as Vault names its fields.

    ``recovery_*`` apply to auto-seals only (issue 13); a Shamir node stores none.
    """

    type: str
    secret_shares: int
    secret_threshold: int
    recovery_shares: int = 0
    recovery_threshold: int = 0

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {"type": self.type, "secret_shares": self.secret_shares,
                               "secret_threshold": self.secret_threshold}
        if self.recovery_shares:
            doc["recovery_shares"] = self.recovery_shares
            doc["recovery_threshold"] = self.recovery_threshold
        return json.dumps(doc).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> SealConfig:
        doc = json.loads(raw)
        return cls(type=str(doc.get("type", "shamir")),
                   secret_shares=int(doc["secret_shares"]),
                   secret_threshold=int(doc["secret_threshold"]),
                   recovery_shares=int(doc.get("recovery_shares", 0)),
                   recovery_threshold=int(doc.get("recovery_threshold", 0)))


@dataclass(frozen=True)
class WrappedRootKey:
    """The root key encrypted by one seal key (one HSM partition, for instance).

    Nothing here is secret: the ciphertext opens only inside the seal.
    """

    key_id: str  # which seal key: e.g. "<token label>/<key label>"
    mechanism: str  # e.g. "CKM_AES_GCM"
    ciphertext: bytes
    iv: bytes = b""

    def to_doc(self) -> dict[str, str]:
        return {"key_id": self.key_id, "mechanism": self.mechanism,
                "ciphertext": base64.b64encode(self.ciphertext).decode(),
                "iv": base64.b64encode(self.iv).decode()}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> WrappedRootKey:
        return cls(key_id=str(doc["key_id"]), mechanism=str(doc["mechanism"]),
                   ciphertext=base64.b64decode(doc["ciphertext"], validate=True),
                   iv=base64.b64decode(doc.get("iv", ""), validate=True))


@dataclass(frozen=True)
class SealedRootKey:
    """What an auto-seal stores at ``core/hsm/barrier-unseal-keys``: the root key
    wrapped once per seal key, so any one reachable partition opens it."""

    seal_type: str
    wrapped: tuple[WrappedRootKey, ...]

    def to_json(self) -> bytes:
        return json.dumps({"seal_type": self.seal_type,
                           "wrapped": [w.to_doc() for w in self.wrapped]}).encode()

    @classmethod
    def from_json(cls, raw: bytes, where: str = SEALED_ROOT_KEY_PATH) -> SealedRootKey:
        """Parse a stored entry (``where``: its path, for the message).

        Raises:
            MalformedSealEntryError: not the shape this class writes (a damaged or
                tampered entry): the node stays sealed and says which entry.
        """
        try:
            doc = json.loads(raw)
            wrapped = tuple(WrappedRootKey.from_doc(w) for w in doc["wrapped"])
            if not wrapped:
                raise ValueError("no wrapped key")
            return cls(seal_type=str(doc["seal_type"]), wrapped=wrapped)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            # binascii.Error and JSONDecodeError are ValueErrors. The detail names the
            # problem, never the content.
            raise MalformedSealEntryError(
                f"the stored entry {where} is malformed ({type(exc).__name__}): restore "
                "it from a backup of the storage") from None


class MalformedSealEntryError(StrongroomError):
    """A stored wrapped key that cannot be parsed (500: the node stays sealed)."""


@dataclass
class Protected:
    """The outcome of protecting a new root key at init.

    ``shares``: what the operator receives (Shamir: the unseal key shares; an
    auto-seal: none, its recovery shares are split by the caller); the caller
    wipes them once answered. ``stored``: what the node stores (auto-seal only).
    """

    shares: list[bytearray] = field(default_factory=list)
    stored: SealedRootKey | None = None


@dataclass(frozen=True)
class BackendHealth:
    """One seal backend (an HSM partition), as ``sys/seal-backend-status`` lists it."""

    name: str
    healthy: bool
    unhealthy_since: datetime | None = None


@dataclass(frozen=True)
class SealHealth:
    """The seal's own state, for ``sys/seal-status`` (``warnings``),
    ``sys/seal-backend-status`` and the log (a lost HSM partition is reported here while
    another one still serves). ``reasons`` never hold a secret."""

    degraded: bool = False
    reasons: tuple[str, ...] = ()
    backends: tuple[BackendHealth, ...] = ()


class Seal(Protocol):
    """A way of protecting the root key; Shamir now, PKCS#11 next (issue 13)."""

    @property
    def type(self) -> str:
        """Vault's seal type name: "shamir", "pkcs11"."""

    @property
    def auto_unseal(self) -> bool:
        """Whether the seal opens the root key itself (then recovery keys apply)."""

    def validate_config(self, config: SealConfig) -> None:
        """Refuse an init request's configuration with Vault's message (BadRequestError)."""

    def protect(self, root_key: bytearray, config: SealConfig) -> Protected:
        """Protect a new root key at init; ``root_key`` stays the caller's to wipe."""

    def recover(self, shares: Sequence[bytearray], stored: SealedRootKey | None,
                config: SealConfig) -> bytearray:
        """The root key, from the operator's ``shares`` (Shamir) or from ``stored``
        (auto-seal); a new bytearray the caller wipes. The caller wipes ``shares``.

        Raises:
            BadRequestError: the shares do not combine, or the seal cannot open it.
        """

    def health(self) -> SealHealth:
        """Degraded state to report (a missing partition); never a secret."""


class AutoSeal(Seal, Protocol):
    """A seal that opens the root key itself (``auto_unseal`` is True): PKCS#11.

    ``wrap``/``unwrap`` protect any key the same way as the root key (the recovery key,
    ``sys/rotate/root``'s new root key), once per reachable partition.
    """

    def wrap(self, plaintext: bytes | bytearray) -> SealedRootKey:
        """``plaintext`` encrypted by every reachable seal key (at least one).

        Raises:
            StrongroomError: no seal key could encrypt (the message says why, per key).
        """

    def unwrap(self, stored: SealedRootKey) -> bytearray:
        """The plaintext, as a new bytearray the caller wipes.

        Raises:
            StrongroomError: no seal key could decrypt (the message says why, per key).
        """

    def complete(self, stored: SealedRootKey, plaintext: bytes | bytearray
                 ) -> SealedRootKey | None:
        """``stored`` plus wraps for reachable seal keys that have none (added to the
        configuration later), or None if nothing is missing; never drops a wrap."""

    def check(self) -> None:
        """Probe every seal key and record its health (the owner calls it periodically)."""


def is_auto_seal(seal: Seal) -> TypeGuard[AutoSeal]:
    """Whether ``seal`` implements :class:`AutoSeal` (``wrap``/``unwrap`` ...)."""
    return seal.auto_unseal and all(
        callable(getattr(seal, name, None)) for name in ("wrap", "unwrap", "complete", "check"))
