"""Recovery keys: what authorizes rekey and generate-root on an auto-sealed node.

With an auto-seal (PKCS#11) the root key is opened by the seal, so no operator
holds unseal keys; Vault then creates a *recovery key* at init, splits it with
Shamir into ``recovery_shares`` shares for the operators and stores it wrapped
by the seal (``core/recovery-key``, its configuration at ``core/recovery-config``,
both in plaintext storage, read while sealed). A quorum of recovery shares stands
in for unseal keys where Vault asks for them. This module holds those rules; the
coordinator (node/coordinator.py) calls it under its lock.

Recovery keys and shares are ``bytearray`` objects, wiped after use
(barrier/secmem.py says why).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from pysequoia import Cert

from strongroom.barrier.keyring import KEY_SIZE
from strongroom.barrier.secmem import random_key, wipe
from strongroom.errors import BadRequestError, StrongroomError
from strongroom.physical.base import Backend, Op
from strongroom.seal import pgp, shamir
from strongroom.seal.base import (
    RECOVERY_CONFIG_PATH,
    AutoSeal,
    Seal,
    SealConfig,
    SealedRootKey,
)

RECOVERY_KEY_PATH = "core/recovery-key"
# Vault's recovery "seal" is always Shamir over the recovery key.
RECOVERY_TYPE = "shamir"
RECOVERY_PREFIX = "invalid recovery configuration: "


def wrapping(seal: Seal) -> AutoSeal:
    """``seal`` as an auto-seal (seal/base.py), whose ``wrap``/``unwrap`` protect the
    recovery key; fails closed when it cannot wrap.

    Raises:
        StrongroomError: (500) the seal has no ``wrap``/``unwrap``.
    """
    if not (callable(getattr(seal, "wrap", None)) and callable(getattr(seal, "unwrap", None))):
        raise StrongroomError(f"seal type {seal.type} cannot wrap keys")
    return cast(AutoSeal, seal)


@dataclass(frozen=True)
class InitRequest:
    """The key-related fields of a ``sys/init`` request, as Vault's InitRequest has them."""

    secret_shares: int = 0
    secret_threshold: int = 0
    pgp_keys: Sequence[str] = ()
    recovery_shares: int = 0
    recovery_threshold: int = 0
    recovery_pgp_keys: Sequence[str] = ()


def check_init_fields(seal: Seal, req: InitRequest) -> None:
    """Vault's ``validateInitParameters``: barrier fields are refused with an auto-seal,
    recovery fields with Shamir, all named in one message.

    Raises:
        BadRequestError: e.g. "parameters secret_shares,secret_threshold not applicable
            to seal type pkcs11".
    """
    barrier = [name for name, given in (("secret_shares", req.secret_shares != 0),
                                        ("secret_threshold", req.secret_threshold != 0),
                                        ("pgp_keys", bool(req.pgp_keys))) if given]
    recovery = [name for name, given in (("recovery_shares", req.recovery_shares != 0),
                                         ("recovery_threshold", req.recovery_threshold != 0),
                                         ("recovery_pgp_keys", bool(req.recovery_pgp_keys)))
                if given]
    refused = barrier if seal.auto_unseal else recovery
    if refused:
        raise BadRequestError(
            f"parameters {','.join(refused)} not applicable to seal type {seal.type}")


def validate_shares(shares: int, threshold: int, prefix: str, *,
                    at_least_one: bool) -> None:
    """Vault's ``SealConfig.Validate`` (``at_least_one``) or ``ValidateRecovery``, which
    allows zero recovery shares (no recovery key at all)."""
    if at_least_one and shares < 1:
        raise BadRequestError(prefix + "shares must be at least one")
    if at_least_one and threshold < 1:
        raise BadRequestError(prefix + "threshold must be at least one")
    if shares > 1 and threshold < 2:
        raise BadRequestError(prefix + "threshold must be greater than one for multiple shares")
    if shares > 255:
        raise BadRequestError(prefix + "shares must be less than 256")
    if threshold > 255:
        raise BadRequestError(prefix + "threshold must be less than 256")
    if threshold > shares:
        raise BadRequestError(prefix + "threshold cannot be larger than shares")


def parse_recovery_keys(keys: Sequence[str], shares: int) -> list[Cert]:
    """``recovery_pgp_keys`` checked against ``recovery_shares`` (Vault's messages)."""
    if not keys:
        return []
    if len(keys) != shares:
        raise BadRequestError(RECOVERY_PREFIX + "count mismatch between number of provided "
                              "PGP keys and number of shares")
    return [pgp.parse_public_key(key, f"recovery_pgp_keys[{i}]", RECOVERY_PREFIX)
            for i, key in enumerate(keys)]


def split_key(key: bytearray, shares: int, threshold: int) -> list[bytearray]:
    """Shares of ``key`` (one share is the key itself, as in Vault); the caller wipes them."""
    if shares == 1:
        return [bytearray(key)]
    return shamir.split(key, shares, threshold)


def combine_shares(parts: Sequence[bytearray], threshold: int, what: str) -> bytearray:
    """The key the ``parts`` combine into (a new bytearray the caller wipes).

    Raises:
        StrongroomError: (500, as Vault) the parts do not combine.
    """
    if threshold == 1:
        return bytearray(parts[0])
    try:
        return shamir.combine(parts)
    except ValueError as exc:
        raise StrongroomError(f"failed to compute {what}: {exc}") from None


def load_config(physical: Backend) -> SealConfig | None:
    raw = physical.get(RECOVERY_CONFIG_PATH)
    return SealConfig.from_json(raw) if raw is not None else None


def store_ops(seal: Seal, key: bytearray | None, config: SealConfig) -> list[Op]:
    """The writes that install a recovery key (wrapped by the seal) and its configuration.

    ``key`` None (zero recovery shares): the configuration alone, as Vault stores it.
    """
    ops: list[Op] = []
    if key is not None:
        ops.append(("put", RECOVERY_KEY_PATH, wrapping(seal).wrap(key).to_json()))
    ops.append(("put", RECOVERY_CONFIG_PATH, config.to_json()))
    return ops


def verify(physical: Backend, seal: Seal, candidate: bytearray) -> None:
    """Check a combined recovery key against the stored one (constant time).

    Raises:
        BadRequestError: Vault's "recovery key verification failed: ..." (no key stored,
            or a different key).
    """
    raw = physical.get(RECOVERY_KEY_PATH)
    if raw is None:
        raise BadRequestError("recovery key verification failed: no recovery key found")
    stored = wrapping(seal).unwrap(SealedRootKey.from_json(raw, RECOVERY_KEY_PATH))
    try:
        if not hmac.compare_digest(stored, candidate):
            raise BadRequestError(
                "recovery key verification failed: recovery key does not match submitted values")
    finally:
        wipe(stored)


@dataclass
class NewRecoveryKey:
    """A recovery key made at init: the key (stored wrapped) and the shares handed out."""

    key: bytearray | None
    config: SealConfig
    shares: list[bytearray]

    def wipe(self) -> None:
        wipe(self.key)
        for share in self.shares:
            wipe(share)


def generate(shares: int, threshold: int) -> NewRecoveryKey:
    """A new recovery key split into ``shares`` (none with zero shares, as Vault allows)."""
    config = SealConfig(type=RECOVERY_TYPE, secret_shares=shares, secret_threshold=threshold)
    if shares <= 0:  # Vault stores the configuration and makes no key
        return NewRecoveryKey(None, config, [])
    key = random_key(KEY_SIZE)
    try:
        return NewRecoveryKey(key, config, split_key(key, shares, threshold))
    except BaseException:
        wipe(key)
        raise
