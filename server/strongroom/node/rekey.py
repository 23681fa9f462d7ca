"""Rekey: new unseal (or recovery) key shares from a quorum of the current ones.

Vault's ``sys/rekey/*`` and ``sys/rekey-recovery-key/*`` state machines (OpenBao's
``vault/rekey.go``), one per target, each a round with a nonce:

* ``init`` starts a round (new share count, threshold, PGP keys, backup,
  verification); only one round per target at a time;
* ``update`` takes the current key holders' shares; at the threshold they are
  combined and checked (Shamir barrier: the combined key must open the keyring;
  recovery, or any barrier rekey under an auto-seal: it must equal the stored
  recovery key), then a new key is made and split;
* with ``require_verification`` the new shares must come back through ``verify``
  before anything changes; otherwise the change happens at once.

What "the change" is belongs to the coordinator (:class:`RekeyHost`): a Shamir
barrier rekey makes a new root key (the keyring's KEK, so the keyring is
re-persisted under it); under an auto-seal a barrier rekey makes a new root key
wrapped by the seal and hands out no shares (Vault's rule); a recovery rekey
makes a new recovery key, wrapped by the seal. Shares and keys are bytearrays,
wiped as soon as they are used; the round is wiped on cancel, completion and seal.
The caller (the coordinator) serializes every call under its own lock.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pysequoia import Cert

from strongroom.barrier.keyring import KEY_SIZE
from strongroom.barrier.secmem import (
    b64_text,
    b64decode_into,
    hexdecode_into,
    random_key,
    wipe,
    wipe_immutable,
)
from strongroom.errors import BadRequestError, StrongroomError
from strongroom.node import recovery
from strongroom.seal import pgp
from strongroom.seal.base import SealConfig

MIN_KEY = 16
MAX_KEY = KEY_SIZE + 1  # a share carries its x-coordinate
BARRIER_PREFIX = "invalid rekey seal configuration: "


class RekeyHost(Protocol):
    """What a rekey needs from the node (the coordinator implements it)."""

    @property
    def auto_unseal(self) -> bool:
        """Whether the seal is an auto-seal (recovery keys authorize the barrier rekey)."""

    def authorizing_config(self, recovery_target: bool) -> SealConfig | None:
        """The configuration whose shares authorize: recovery's or the barrier's."""

    def check_current_key(self, recovery_target: bool, key: bytearray) -> None:
        """Raise unless ``key`` (combined from the current shares) is the right one."""

    def install(self, recovery_target: bool, new_key: bytearray | None,
                config: SealConfig) -> None:
        """Make ``new_key`` the key (None: a new root key under an auto-seal, made by
        the host) with ``config`` (the new share count/threshold)."""

    def store_backup(self, recovery_target: bool, doc: bytes) -> None:
        """Keep the PGP-encrypted new shares (Vault's backup entry)."""


def decode_key(key: object) -> bytearray:
    """A share in hex or base64, as Vault's HTTP layer decodes it (a bytearray to wipe).

    Raises:
        BadRequestError: missing, or neither hex nor base64, or of the wrong length.
    """
    if not isinstance(key, str) or not key:
        raise BadRequestError("'key' must be specified in request body as JSON")
    text = key.encode("ascii", "replace")
    try:
        raw: bytearray | None = None
        try:
            raw = hexdecode_into(text)
        except ValueError:
            raw = None
        if raw is None or not MIN_KEY <= len(raw) <= MAX_KEY:
            wipe(raw)
            try:
                raw = b64decode_into(text)
            except ValueError:
                raise BadRequestError("'key' must be a valid hex or base64 string") from None
    finally:
        wipe_immutable(text)
    if len(raw) < MIN_KEY:
        wipe(raw)
        raise BadRequestError(f"key is shorter than minimum {MIN_KEY} bytes")
    if len(raw) > MAX_KEY:
        wipe(raw)
        raise BadRequestError(f"key is longer than maximum {MAX_KEY} bytes")
    return raw


def _new_nonce() -> str:
    return str(uuid.uuid4())


@dataclass
class Round:
    """One rekey attempt (Vault's rotation SealConfig plus its progress)."""

    shares: int
    threshold: int
    certs: list[Cert]
    backup: bool
    verification_required: bool
    nonce: str
    progress: list[bytearray] = field(default_factory=list)
    verification_key: bytearray | None = None
    verification_nonce: str = ""
    verification_progress: list[bytearray] = field(default_factory=list)

    @property
    def fingerprints(self) -> list[str] | None:
        return [c.fingerprint for c in self.certs] or None

    def clear_progress(self) -> None:
        for part in self.progress:
            wipe(part)
        self.progress = []

    def clear_verification(self) -> None:
        for part in self.verification_progress:
            wipe(part)
        self.verification_progress = []

    def wipe(self) -> None:
        self.clear_progress()
        self.clear_verification()
        wipe(self.verification_key)
        self.verification_key = None


def _add_share(parts: list[bytearray], share: bytearray, what: str) -> None:
    """Append ``share`` unless already given (constant-time; Vault: a 400, not ignored)."""
    if any(hmac.compare_digest(share, part) for part in parts):
        wipe(share)
        raise BadRequestError(f"given key has already been provided during this {what}")
    parts.append(share)


def _keys_text(shares: list[bytes] | list[bytearray]) -> tuple[list[str], list[str]]:
    return [s.hex() for s in shares], [b64_text(s) for s in shares]


class Rekeyer:
    """The two rekey state machines of a node (barrier and recovery)."""

    def __init__(self, host: RekeyHost, nonce_factory: Callable[[], str] = _new_nonce) -> None:
        self._host = host
        self._nonce = nonce_factory
        self._rounds: dict[bool, Round | None] = {False: None, True: None}

    def reset(self) -> None:
        """Forget both rounds (on seal): their shares and any key awaiting verification."""
        for target, round_ in self._rounds.items():
            if round_ is not None:
                round_.wipe()
            self._rounds[target] = None

    # -- sys/rekey/init ---------------------------------------------------------

    def status(self, target: bool) -> dict[str, Any]:
        config = self._host.authorizing_config(target or self._host.auto_unseal)
        if config is None:
            raise BadRequestError("Vault is not initialized")
        status: dict[str, Any] = {
            "nonce": "", "started": False, "t": 0, "n": 0, "progress": 0,
            "required": config.secret_threshold, "pgp_fingerprints": None,
            "backup": False, "verification_required": False,
        }
        round_ = self._rounds[target]
        if round_ is not None:
            status.update(nonce=round_.nonce, started=True, t=round_.threshold,
                          n=round_.shares, progress=len(round_.progress),
                          verification_required=round_.verification_required)
            if round_.verification_nonce:
                status["verification_nonce"] = round_.verification_nonce
            if round_.certs:
                status.update(pgp_fingerprints=round_.fingerprints, backup=round_.backup)
        return status

    def start(self, target: bool, shares: int, threshold: int, pgp_keys: list[str],
              backup: bool, require_verification: bool) -> dict[str, Any]:
        """Start a round (Vault's checks, in Vault's order); answers the new status."""
        if backup and not pgp_keys:
            raise BadRequestError("cannot request a backup of the new keys without providing "
                                  "PGP keys for encryption")
        if pgp_keys and len(pgp_keys) != shares:
            raise BadRequestError("incorrect number of PGP keys for rekey")
        if not target and self._host.auto_unseal:
            # A new root key stored by the seal: nobody receives shares.
            shares = threshold = 0
            for given, what in ((pgp_keys, "PGP key encryption"), (backup, "key backup"),
                                (require_verification, "requiring verification")):
                if given:
                    raise BadRequestError(f"{what} not supported when rekeying the barrier "
                                          "key with recovery keys")
            certs: list[Cert] = []
        else:
            prefix = recovery.RECOVERY_PREFIX if target else BARRIER_PREFIX
            try:
                recovery.validate_shares(shares, threshold, prefix, at_least_one=True)
                certs = [pgp.parse_public_key(k, f"pgp_keys[{i}]", prefix)
                         for i, k in enumerate(pgp_keys)]
            except BadRequestError as exc:
                raise StrongroomError(exc.message) from None  # Vault answers these with 500
        if self._rounds[target] is not None:
            raise BadRequestError("rekey already in progress")
        self._rounds[target] = Round(shares, threshold, certs, backup, require_verification,
                                     self._nonce())
        return self.status(target)

    def cancel(self, target: bool) -> None:
        round_ = self._rounds[target]
        if round_ is not None:
            round_.wipe()
        self._rounds[target] = None

    # -- sys/rekey/update ---------------------------------------------------------

    def update(self, target: bool, share: bytearray, nonce: str) -> dict[str, Any]:
        """Take one current share (owned from now on); the status, or the new keys."""
        try:
            config = self._host.authorizing_config(target or self._host.auto_unseal)
            if config is None:
                raise BadRequestError("Vault is not initialized")
            round_ = self._rounds[target]
            if round_ is None:
                raise BadRequestError("no recovery rekey in progress" if target
                                      else "no barrier rekey in progress")
            if round_.verification_key is not None:
                raise BadRequestError(
                    "rekey operation already finished; verification must be performed; "
                    f'nonce for the verification operation is "{round_.verification_nonce}"')
            if nonce != round_.nonce:
                raise BadRequestError("incorrect nonce supplied; nonce for this rekey "
                                      f'operation is "{round_.nonce}"')
        except BaseException:
            wipe(share)
            raise
        _add_share(round_.progress, share,
                   "rekey operation" if target else "generation operation")
        if len(round_.progress) < config.secret_threshold:
            return self.status(target)
        parts, round_.progress = round_.progress, []
        try:
            current = recovery.combine_shares(parts, config.secret_threshold,
                                              "recovery key" if target else "root key")
        finally:
            for part in parts:
                wipe(part)
        try:
            self._host.check_current_key(target or self._host.auto_unseal, current)
        finally:
            wipe(current)
        return self._make_new_key(target, round_)

    def _make_new_key(self, target: bool, round_: Round) -> dict[str, Any]:
        result: dict[str, Any] = {"nonce": round_.nonce, "complete": True, "keys": [],
                                  "keys_base64": [], "pgp_fingerprints": None,
                                  "backup": round_.backup,
                                  "verification_required": False}
        new_key: bytearray | None = None
        shares: list[bytearray] = []
        try:
            if round_.shares:  # zero: an auto-seal's barrier rekey, the host makes the key
                new_key = random_key(KEY_SIZE)
                shares = recovery.split_key(new_key, round_.shares, round_.threshold)
                out: list[bytes] | list[bytearray] = shares
                if round_.certs:
                    out = pgp.encrypt_shares(shares, round_.certs)
                    result["pgp_fingerprints"] = round_.fingerprints
                    if round_.backup:
                        self._backup(target, round_, out)
                result["keys"], result["keys_base64"] = _keys_text(out)
            if round_.verification_required:
                round_.verification_key, new_key = new_key, None
                round_.verification_nonce = self._nonce()
                result.update(verification_required=True,
                              verification_nonce=round_.verification_nonce)
                return result
            self._host.install(target, new_key, SealConfig(
                type=recovery.RECOVERY_TYPE if target else "shamir",
                secret_shares=round_.shares, secret_threshold=round_.threshold))
            self.cancel(target)
            return result
        finally:
            wipe(new_key)
            for share in shares:
                wipe(share)

    def _backup(self, target: bool, round_: Round,
                encrypted: Sequence[bytes | bytearray]) -> None:
        keys: dict[str, list[str]] = {}
        for cert, share in zip(round_.certs, encrypted, strict=True):
            keys.setdefault(cert.fingerprint, []).append(share.hex())
        self._host.store_backup(target, json.dumps({"Nonce": round_.nonce,
                                                    "Keys": keys}).encode())

    # -- sys/rekey/verify -----------------------------------------------------------

    def verify_status(self, target: bool) -> dict[str, Any]:
        round_ = self._rounds[target]
        if round_ is None:
            raise BadRequestError("no rekey configuration found")
        return {"nonce": round_.verification_nonce,
                "started": round_.verification_key is not None,
                "t": round_.threshold, "n": round_.shares,
                "progress": len(round_.verification_progress)}

    def verify(self, target: bool, share: bytearray, nonce: str) -> dict[str, Any]:
        """Take one new share (owned from now on); at the threshold, install the new key."""
        round_ = self._rounds[target]
        try:
            if round_ is None:
                raise BadRequestError("no rekey in progress")
            if round_.verification_key is None:
                raise BadRequestError("no rekey verification in progress")
            if nonce != round_.verification_nonce:
                raise BadRequestError("incorrect nonce supplied; nonce for this verify "
                                      f'operation is "{round_.verification_nonce}"')
        except BaseException:
            wipe(share)
            raise
        _add_share(round_.verification_progress, share, "verify operation")
        if len(round_.verification_progress) < round_.threshold:
            return self.verify_status(target)
        parts, round_.verification_progress = round_.verification_progress, []
        candidate: bytearray | None = None
        try:
            candidate = recovery.combine_shares(parts, round_.threshold,
                                                "key for verification")
            if not hmac.compare_digest(candidate, round_.verification_key):
                raise BadRequestError("rekey verification failed; incorrect key shares "
                                      "supplied")
        except BaseException:
            round_.verification_nonce = self._nonce()  # as Vault: a failed try rotates it
            raise
        finally:
            wipe(candidate)
            for part in parts:
                wipe(part)
        done = round_.verification_nonce
        self._host.install(target, round_.verification_key, SealConfig(
            type=recovery.RECOVERY_TYPE if target else "shamir",
            secret_shares=round_.shares, secret_threshold=round_.threshold))
        self.cancel(target)
        return {"nonce": done, "complete": True}

    def verify_restart(self, target: bool) -> dict[str, Any]:
        round_ = self._rounds[target]
        if round_ is not None:
            round_.clear_verification()
            round_.verification_nonce = self._nonce()
        return self.verify_status(target)
